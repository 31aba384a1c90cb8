#!/usr/bin/env bash
# Request/response benchmark (release build): the built-in broadcast target (another
# process) sends heartbeat frames as fast as it can to 64 sessions; the bundled C heartbeat
# handler answers every one. Prints frames/s read and handler calls/s, in total and per shard.
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
source "$(dirname "$0")/lib.sh"
start_target rr broadcast --rate 0 --body-size 16
cp sdk/examples/c/heartbeat.wasm "$dir/"
cat > "$dir/rr.ldsh" <<SCRIPT
SETTINGS rr {
    SESSION = "TCP"
    PORT = $TARGET_PORT
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
"$bin" "$dir/rr.ldsh" --quiet --json "$dir/rr.json" > /dev/null
stop_target
python3 - "$dir/rr.json" "$dir/rr.target" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
window = r["timeline"][-1]["atNanoseconds"] / 1e9
t = r["totals"]
print(f"frames_read_per_s={t['framesRead']/window:.0f}")
print(f"handler_calls_per_s={t['handlerCalls']/window:.0f}")
print(f"responses_per_s={t['responsesSent']/window:.0f}")
for i, s in enumerate(r["shards"]):
    print(f"shard{i}_handler_calls_per_s={s['handlerCalls']/window:.0f}")
print(f"handler_traps={t['handlerTraps']} protocol_errors={t['protocolErrors']}")
print("# target: " + open(sys.argv[2]).read().strip().splitlines()[-1])
PY
