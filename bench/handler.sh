#!/usr/bin/env bash
# Handler benchmarks (release build).
#
# 1. Closed-loop request/response: rr_server.c (one C thread, epoll) sends each connection a
#    heartbeat ping and answers every pong with the next ping, so each of 64 connections has
#    one request in flight. The clients, one after another, each for SECONDS_PER_RUN:
#      native        rr_native.c, one C thread, no WASM (the reference)
#      original      Loadshear with heartbeat.wasm on the original contract (handle_header)
#      original+HL   the same module with HEADER_LENGTH (no header calls)
#      fast          heartbeat-fast.wasm, the same C source on the fast path (body_length)
#      fast+HL       the fast module with HEADER_LENGTH
#    Loadshear runs one shard (one thread, as the native client; SHARDS=2 for two). Prints round trips/s (the
#    server's count over the run) and client CPU µs per round trip, and the ratios to native;
#    RUNS=3 takes the median of three; CLIENTS picks some of them (an older build given as
#    LOADSHEAR_BIN has no fast path: CLIENTS="native original original+HL" MODULES=heartbeat.wasm).
#    LOADSHEAR_DIRECT_SOCKETS=0 measures the clients with NIO's own connect and writes instead of
#    the direct socket path (docs/metrics.md).
# 2. Handler work per frame, header and message through each path, no network:
#    instructions counted by valgrind --tool=callgrind (stable on a noisy machine) on the
#    loadshear-allocations tool, which runs 20,000 frames through each module given (minus a
#    run without modules; instantiation is in the figure, amortized); and the time from
#    `loadshear check`. (valgrind crashes on the loadshear binary itself, in the async main's
#    parked thread, so the synchronous tool is what it counts.)
# 3. Server-push: the built-in broadcast target sends heartbeat frames as fast as it can to
#    64 sessions (two shards); frames/s read and answered, for each path.
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RUNS=${RUNS:-1}
source "$(dirname "$0")/lib.sh"
cc -O2 -o "$dir/rr_server" bench/rr_server.c
cc -O2 -o "$dir/rr_native" bench/rr_native.c
cp sdk/examples/c/heartbeat.wasm sdk/examples/c/heartbeat-fast.wasm "$dir/"

# rr_script NAME MODULE HEADER_LENGTH_LINE PORT SHARDS: 64 sessions for SECONDS_PER_RUN.
rr_script() {
    cat > "$dir/$1.ldsh" <<SCRIPT
SETTINGS rr {
    SESSION = "TCP"
    PORT = $4
    READ = "true"
    HEADERSIZE = 8
    BODYMAX = 4096
    $3
    SHARDS = $5
    HANDLER = "$2"
    ENDPOINTS { 127.0.0.1 }
}
ORCHESTRATOR rr {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 0ms
    DISCONNECT 0:64 OFFSET ${SECONDS_PER_RUN}s
}
SCRIPT
}

# rr_run CLIENT: one run against a fresh server; prints "trips cpu_seconds".
rr_run() {
    "$dir/rr_server" > "$dir/srv.out" &
    local spid=$!
    for _ in $(seq 100); do grep -q port "$dir/srv.out" 2>/dev/null && break; sleep 0.05; done
    local port
    port=$(awk '/port/ {print $2}' "$dir/srv.out")
    local cpu
    case $1 in
    native) cpu=$("$dir/rr_native" "$port" 64 "$SECONDS_PER_RUN" | awk '/cpu_seconds/ {print $2}') ;;
    *)
        local module=heartbeat.wasm hl=""
        case $1 in fast*) module=heartbeat-fast.wasm ;; esac
        case $1 in *+HL) hl='HEADER_LENGTH = 4:4 "big"' ;; esac
        rr_script "$1" "$module" "$hl" "$port" "${SHARDS:-1}"
        cpu=$(python3 - "$bin" "$dir/$1.ldsh" <<'PY'
import os, subprocess, sys
p = subprocess.Popen([sys.argv[1], sys.argv[2], "--quiet"], stdout=subprocess.DEVNULL)
_, _, ru = os.wait4(p.pid, 0)
print(f"{ru.ru_utime + ru.ru_stime:.3f}")
PY
        )
        ;;
    esac
    kill -INT "$spid"
    wait "$spid" || true
    echo "$(awk '/round_trips/ {print $2}' "$dir/srv.out") $cpu"
}

echo "# closed-loop request/response, 64 connections, ${SECONDS_PER_RUN}s per run, median of $RUNS"
results=()
for client in ${CLIENTS:-native original original+HL fast fast+HL}; do
    runs=()
    for _ in $(seq "$RUNS"); do runs+=("$(rr_run "$client")"); done
    results+=("$client $(printf '%s\n' "${runs[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2)')")
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys
secs = float(sys.argv[1])
rows = [l.split() for l in sys.stdin if l.strip()]
base = None
for name, trips, cpu in rows:
    rate = int(trips) / secs
    us = float(cpu) / max(int(trips), 1) * 1e6
    if base is None: base = (rate, us)
    print(f"{name:12} round_trips_per_s={rate:9.0f} cpu_us_per_trip={us:5.2f} vs_native_rate={rate / base[0]:.2f} vs_native_cpu={us / base[1]:.2f}")
' "$SECONDS_PER_RUN"

echo "# handler work per frame (header + message through the path, no network)"
tool="$(dirname "$bin")/loadshear-allocations"
if command -v valgrind > /dev/null && [ -x "$tool" ]; then
    objcopy --strip-debug "$tool" "$dir/la"
    ir() {
        LD_LIBRARY_PATH="$(dirname "$bin")" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$dir/la" "$@" > /dev/null 2>&1
        awk '/^summary:|^totals:/ {print $2; exit}' "$dir/cg.out"
    }
    base=$(ir)
fi
for module in ${MODULES:-heartbeat.wasm heartbeat-fast.wasm}; do
    instructions="(no valgrind or no loadshear-allocations)"
    if [ -n "${base:-}" ]; then instructions=$(( ($(ir "$dir/$module") - base) / 20000 )); fi
    echo "$module instructions_per_frame=$instructions $("$bin" check "$dir/$module" --iterations 200000 | sed -n 's/^time *\([0-9.]*\) µs.*/\1/p') µs_per_frame"
done

echo "# server-push: broadcast target to 64 sessions, 2 shards"
for module in ${MODULES:-heartbeat.wasm heartbeat-fast.wasm}; do
    start_target rr broadcast --rate 0 --body-size 16
    rr_script push "$module" "" "$TARGET_PORT" 2
    "$bin" "$dir/push.ldsh" --quiet --json "$dir/push.json" > /dev/null
    stop_target
    python3 - "$dir/push.json" "$module" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
window = r["timeline"][-1]["atNanoseconds"] / 1e9
t = r["totals"]
print(f"{sys.argv[2]:20} frames_read_per_s={t['framesRead']/window:.0f} responses_per_s={t['responsesSent']/window:.0f} handler_traps={t['handlerTraps']}")
PY
done
