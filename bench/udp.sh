#!/usr/bin/env bash
# UDP flood benchmark (release build): 64 sessions flood datagrams (FLOOD + REPEAT) for
# SECONDS_PER_RUN s (default 5) at the built-in UDP sink in another process, for each size
# (SIZES, default "64 512 1400"), once with one send per datagram (LOADSHEAR_UDP_GSO=0, the
# old path) and once with segmentation offload. Prints, per size and path: datagrams/s sent,
# datagrams/s the sink received, and what the sink's kernel dropped (its receive queue full).
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
SIZES=${SIZES:-64 512 1400}
source "$(dirname "$0")/lib.sh"
for size in $SIZES; do
    for gso in 0 1; do
        start_target "udp$size$gso" sink --udp
        head -c "$size" /dev/zero | tr '\0' 'u' > "$dir/d.bin"
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
        LOADSHEAR_UDP_GSO=$gso "$bin" "$dir/udp.ldsh" --quiet --json "$dir/udp.json" > /dev/null
        kill -INT "$TARGET_PID"; wait "$TARGET_PID" || true
        python3 - "$dir/udp.json" "$dir/udp$size$gso.target" "$size" "$gso" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
window = (r["timeline"][-1]["atNanoseconds"] - r["timeline"][-2]["atNanoseconds"]) / 1e9
sent = r["totals"]["packetsSent"]
said = open(sys.argv[2]).read()
got = int(re.search(r"datagrams received (\d+)", said).group(1))
drops = re.search(r"receive queue full\) (\d+)", said)
path = "gso" if sys.argv[4] == "1" else "one_send_per_datagram"
tag = f"udp_{sys.argv[3]}B_{path}"
print(f"{tag}_sent_per_s={sent/window:.0f}")
print(f"{tag}_received_per_s={got/window:.0f}")
print(f"{tag}_kernel_drops={drops.group(1) if drops else 'unknown'}")
PY
    done
done
