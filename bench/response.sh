#!/usr/bin/env bash
# Response-time benchmark (release build). A reference server (bench/delay_echo.c, a
# one-thread epoll echo that answers each request exactly 1 ms after it arrived) is loaded
# by 64 paced sessions:
# 1. at 50,000 requests/s for 10 s, on one shard (SHARDS = 1: the server under test keeps
#    the other core, as it should when it shares the machine) and then on two (_2shards):
#    response p50/p99 and the instrument's error, p50 − 1 ms
#    (it includes the loopback round trip); the server measures the service time it really
#    gave (its own timer wakes late on a loaded machine), and the error against that is
#    printed beside it; then bench/response_native.c (a one-thread C client, same schedule,
#    same server, no runtime) measures the same load, for the floor any client reads on
#    this machine (two loopback hops and a wake-up on each side);
# 2. then at rising rates, 5 s each, until the verdict turns SATURATED: the highest paced
#    request rate this machine holds with a trustworthy verdict (two shards: all of it).
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
clang -O2 -o "$dir/delay_echo" bench/delay_echo.c
clang -O2 -o "$dir/response_native" bench/response_native.c
"$dir/delay_echo" 0 1000 > "$dir/echo.port" &
echo_pid=$!
pids+=($echo_pid)
for _ in $(seq 100); do grep -q port "$dir/echo.port" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/port //p' "$dir/echo.port")
# served: the server's service-time line for the replies since the last call (SIGUSR1).
served() {
    local lines
    lines=$(wc -l < "$dir/echo.port")
    kill -USR1 "$echo_pid"
    for _ in $(seq 100); do [ "$(wc -l < "$dir/echo.port")" -gt "$lines" ] && break; sleep 0.05; done
    tail -n 1 "$dir/echo.port" | grep '^service ' || { echo "response.sh: the server did not report" >&2; return 1; }
}
printf '\x00\x00\x00\x02\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00' > "$dir/req.bin"
run() {  # $1 = total requests/s, $2 = seconds, $3 = shards; prints the JSON report's path
    local per=$(python3 -c "print($1/64)")
    cat > "$dir/r.ldsh" <<SCRIPT
SETTINGS r {
    SESSION = "TCP"
    PORT = $port
    READ = "true"
    HEADERSIZE = 8
    BODYMAX = 64
    HEADER_LENGTH = 4:4 "big"
    RESPONSE = 8:8 "big"
    TIMEOUT = 2s
    REPEAT = "true"
    SHARDS = $3
    ENDPOINTS { 127.0.0.1 }
    PACKETS { req : "req.bin" }
}
ORCHESTRATOR r {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 10ms
    SEND 0:64 req COPIES 1 COUNTER 8:8 "big":1 OFFSET 100ms
    PACE 0:64 $per/s OFFSET 0ms
    DRAIN 0:64 OFFSET $2s
}
SCRIPT
    served > /dev/null
    "$bin" "$dir/r.ldsh" --quiet --json "$dir/r$1.$3.json" > /dev/null || true
    served > "$dir/r$1.$3.served"
    echo "$dir/r$1.$3.json"
}
# figures REPORT SUFFIX: the 50,000/s run's keys.
figures() {
    python3 - "$1" "${1%.json}.served" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
served = open(sys.argv[2]).read().split()
sfx = sys.argv[3]
server_p50 = int(served[served.index("p50_us") + 1])
resp, t, g = r["latencyMicroseconds"]["response"], r["totals"], r["generator"]
print(f"rate_answered{sfx}={t['replies'] / r['durationSeconds']:.0f}")
print(f"response_p50_us{sfx}={resp['p50']}")
print(f"response_p99_us{sfx}={resp['p99']}")
print(f"instrument_error_p50_us{sfx}={resp['p50'] - 1000}")
print(f"server_service_p50_us{sfx}={server_p50}")
print(f"server_service_p99_us{sfx}={served[served.index('p99_us') + 1]}")
print(f"instrument_error_vs_served_p50_us{sfx}={resp['p50'] - server_p50}")
print(f"timeouts{sfx}={t['timeouts']}")
print(f"generator_saturated{sfx}={g['saturated']}")
print(f"lag_p50_us{sfx}={g.get('lagP50Microseconds')}")
print(f"lag_p99_us{sfx}={g.get('lagP99Microseconds')}")
PY
}
echo "rate_requested=50000"
report=$(run 50000 10 1)
figures "$report" ""
report2=$(run 50000 10 2)
figures "$report2" "_2shards"
served > /dev/null
"$dir/response_native" "$port" 64 50000 10 | tee "$dir/native.out"
served | sed -n 's/^service p50_us \([0-9]*\).*/native_server_service_p50_us=\1/p'
python3 - "$report" "$report2" "$dir/native.out" <<'PY'
import json, sys
native = int(dict(line.strip().split("=") for line in open(sys.argv[3]) if "=" in line)["native_response_p50_us"])
for path, sfx in ((sys.argv[1], ""), (sys.argv[2], "_2shards")):
    p50 = json.load(open(path))["latencyMicroseconds"]["response"]["p50"]
    print(f"loadshear_minus_native_p50_us{sfx}={p50 - native}")
PY
best=0
for rate in 10000 20000 30000 40000 50000 75000 100000 150000 200000; do
    report=$(run $rate 5 2)
    verdict=$(python3 -c "import json,sys; r=json.load(open('$report')); g=r['generator']; l=r['latencyMicroseconds']['response']; print('SATURATED' if g['saturated'] else 'ok', 'response p50', l['p50'], 'p99', l['p99'], 'lag p99', g.get('lagP99Microseconds'), ';'.join(g['reasons']))")
    echo "# $rate/s: $verdict"
    case $verdict in SATURATED*) break ;; esac
    best=$rate
done
echo "highest_ok_rate=$best"
