#!/usr/bin/env bash
# UDP flood benchmark (release build): 64 sessions flood 64-byte datagrams (FLOOD + REPEAT)
# for 10 s at the built-in UDP sink in another process. Prints datagrams/s sent, datagrams/s
# the sink received, and the share the kernel dropped.
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
source "$(dirname "$0")/lib.sh"
start_target udp sink --udp
head -c 64 /dev/zero | tr '\0' 'u' > "$dir/d.bin"
cat > "$dir/udp.ldsh" <<SCRIPT
SETTINGS udp {
    SESSION = "UDP"
    PORT = $TARGET_PORT
    REPEAT = "true"
    ENDPOINTS { 127.0.0.1 }
    PACKETS { d : "d.bin" }
}
ORCHESTRATOR udp {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 10ms
    SEND 0:64 d COPIES 16 OFFSET 100ms
    FLOOD 0:64 OFFSET 0ms
    DISCONNECT 0:64 OFFSET ${SECONDS_PER_RUN}s
}
SCRIPT
"$bin" "$dir/udp.ldsh" --quiet --json "$dir/udp.json" > /dev/null
kill -INT "$TARGET_PID"; wait "$TARGET_PID" || true
python3 - "$dir/udp.json" "$dir/udp.target" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
window = (r["timeline"][-1]["atNanoseconds"] - r["timeline"][-2]["atNanoseconds"]) / 1e9
sent = r["totals"]["packetsSent"]
got = int(re.search(r"datagrams received (\d+)", open(sys.argv[2]).read()).group(1))
print(f"udp_datagrams_sent_per_s={sent/window:.0f}")
print(f"udp_datagrams_received_per_s={got/window:.0f}")
print(f"udp_dropped_share={(sent-got)/max(sent,1):.3f}")
PY
