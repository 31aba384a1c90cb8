#!/usr/bin/env bash
# Request/response benchmark (release build): the built-in broadcast target (another
# process) sends heartbeat frames as fast as it can to 64 sessions; the bundled C heartbeat
# handler answers every one. Prints frames/s read and handler calls/s, in total and per shard.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
swift build -c release >/dev/null
bin=.build/release/loadshear
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
port=$((55800 + RANDOM % 50))
cp sdk/examples/c/heartbeat.wasm "$dir/"
cat > "$dir/rr.ldsh" <<SCRIPT
SETTINGS rr {
    SESSION = "TCP"
    PORT = $port
    READ = "true"
    HEADERSIZE = 8
    BODYMAX = 4096
    SHARDS = 2
    HANDLER = "heartbeat.wasm"
    ENDPOINTS { 127.0.0.1 }
}
ORCHESTRATOR rr {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 10ms
    DISCONNECT 0:64 OFFSET ${SECONDS_PER_RUN}s
}
SCRIPT
"$bin" target broadcast --port "$port" --rate 0 --body-size 16 > "$dir/target" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$dir/target" 2>/dev/null && break; sleep 0.1; done
"$bin" "$dir/rr.ldsh" --quiet --json "$dir/rr.json" > /dev/null
kill -INT "${pids[0]}"; wait "${pids[0]}" || true
python3 - "$dir/rr.json" "$dir/target" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
window = r["timeline"][-1]["atNanoseconds"] / 1e9
t = r["totals"]
print(f"frames_read_per_s={t['framesRead']/window:.0f}")
print(f"handler_calls_per_s={t['handlerCalls']/window:.0f}")
print(f"responses_per_s={t['responsesSent']/window:.0f}")
for i, s in enumerate(r["shards"]):
    print(f"shard{i}_handler_calls_per_s={s['handlerCalls']/window:.0f}")
print(f"handler_traps={t['handlerTraps']} protocol_errors={t['protocolErrors']}")
target = open(sys.argv[2]).read().strip().splitlines()[-1]
print("# target: " + target)
PY
