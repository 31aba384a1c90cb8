#!/usr/bin/env bash
# Churn benchmark (release build): SESSIONS sessions (default 1,000) connect to
# bench/connect_sink.c, then CHURN every PERIOD (default 1s) for SECONDS (default 20), then
# disconnect. Prints:
#   reconnects                 reconnects counted in the run (each churn turn taken)
#   churn_skipped              turns skipped because the session was still connecting
#   reconnects_per_s           reconnects / SECONDS (expected: SESSIONS / PERIOD)
#   reconnects_per_s_min/max   the slowest and fastest whole 500 ms interval of the churn
#   connect_p50_us/p99_us      connect latency over every connect (first ones and reconnects;
#                              the first SESSIONS connect as one burst, whose queueing on the
#                              loop is the slow tail: see the "# connect latency" bins)
#   socket_fds_open            the loadshear process's socket fds just before DISCONNECT,
#   socket_fds_idle            … and before CONNECT (the engine's own)
#   fd_leak                    socket_fds_open − socket_fds_idle − SESSIONS (0: no leak;
#                              a session caught between its close and its reconnect adds ±1)
#   closed_by_us               FIN closes counted (one per churn turn, plus the DISCONNECT)
# Environment: SESSIONS, PERIOD (a script duration), DURATION (seconds), SHARDS (default 2).
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
n=${SESSIONS:-1000}
period=${PERIOD:-1s}
secs=${DURATION:-20}
shards=${SHARDS:-2}
clang -O2 -o "$dir/connect_sink" bench/connect_sink.c
"$dir/connect_sink" 0 1 > "$dir/sink.out" &
pids+=("$!")
for _ in $(seq 100); do grep -q port "$dir/sink.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/port //p' "$dir/sink.out")

# Timeline (offsets are from the previous action): CONNECT at 1 s, CHURN from 2 s,
# DISCONNECT at 2 + DURATION s. The fd samples are taken at 0.5 s and 0.3 s before DISCONNECT.
cat > "$dir/churn.ldsh" <<SCRIPT
SETTINGS churn {
    SESSION = "TCP"
    PORT = $port
    SHARDS = $shards
    ENDPOINTS { 127.0.0.1 }
}
ORCHESTRATOR churn {
    CREATE $n OFFSET 0ms
    CONNECT 0:$n OFFSET 1s
    CHURN 0:$n EVERY $period OFFSET 1s
    DISCONNECT 0:$n OFFSET ${secs}s
}
SCRIPT
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
"$bin" "$dir/churn.ldsh" --quiet --json "$dir/churn.json" > "$dir/churn.out" &
pid=$!
pids+=("$pid")
sleep 0.5
idle=$(sockets "$pid")
sleep "$(echo "$secs + 2 - 0.3 - 0.5" | bc)"
open=$(sockets "$pid")
wait "$pid"
python3 - "$dir/churn.json" "$n" "$secs" "$idle" "$open" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, secs, idle, open_ = int(sys.argv[2]), float(sys.argv[3]), *map(int, sys.argv[4:])
t = r["totals"]
rec = t.get("reconnects", 0)
# Whole intervals inside the churn (2 s .. 2 + secs), by their end time.
rates = [iv["increment"].get("reconnects", 0) / iv["intervalSeconds"]
         for iv in r.get("intervals", [])
         if 2.5 <= iv["elapsedSeconds"] <= 2 + secs and iv["intervalSeconds"] > 0.4]
c = r["latencyMicroseconds"].get("connect", {})
print(f"sessions={n}")
print(f"reconnects={rec}")
print(f"churn_skipped={t.get('churnSkipped', 0)}")
print(f"connections_failed={t.get('connectionsFailed', 0)}")
print(f"reconnects_per_s={rec / secs:.0f}")
if rates:
    print(f"reconnects_per_s_min={min(rates):.0f}")
    print(f"reconnects_per_s_max={max(rates):.0f}")
print(f"connect_samples={c.get('samples', 0)}")
print(f"connect_p50_us={c.get('p50', 0)}")
print(f"connect_p99_us={c.get('p99', 0)}")
print("# connect latency: " + ", ".join(f"{b['below']} {b['count']}" for b in c.get("powerOfTwoBins", []) if b["count"]))
print(f"socket_fds_idle={idle}")
print(f"socket_fds_open={open_}")
print(f"fd_leak={open_ - idle - n}")
print(f"closed_by_us={t.get('closedByUs', 0)}")
PY
