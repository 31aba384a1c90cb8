#!/usr/bin/env bash
# Flood benchmark (release build), all on loopback:
#   1. iperf3, 64 parallel streams for 10 s: the machine's loopback ceiling right now.
#   2. Loadshear: 64 sessions, 1 KiB packet, FLOOD + REPEAT for 10 s against the built-in
#      sink in another process. Reported as bytes/s and as a ratio of iperf3's bytes/s.
#   3. The same with a 16-byte packet, reported as packets/s.
#   4. The same 16-byte flood with a COUNTER patched into every packet.
# Prints key=value lines. Absolute numbers drift on a shared machine; the ratio is the figure.
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
if ! command -v iperf3 >/dev/null; then
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3; } >/dev/null 2>&1 \
        || { echo "bench: cannot install iperf3 (apt-get update && apt-get install iperf3 failed)" >&2; exit 1; }
fi
source "$(dirname "$0")/lib.sh"

# 1. iperf3
iperf3 -s -p 55650 -1 >/dev/null 2>&1 &
pids+=($!)
# Wait for the listener without connecting to it (a probe connection would be the one
# client `iperf3 -s -1` serves).
for _ in $(seq 50); do ss -ltn | grep -q ':55650 ' && break; sleep 0.1; done
iperf3 -c 127.0.0.1 -p 55650 -P 64 -t "$SECONDS_PER_RUN" -J > "$dir/iperf.json"
iperf_bps=$(python3 -c "import json;d=json.load(open('$dir/iperf.json'));print(d['end']['sum_sent']['bits_per_second']/8)")

flood() {  # $1 = name, $2 = packet bytes, $3 = extra SEND modifiers
    start_target "$1" sink
    local port=$TARGET_PORT
    head -c "$2" /dev/zero | tr '\0' 'x' > "$dir/$1.bin"
    cat > "$dir/$1.ldsh" <<SCRIPT
SETTINGS $1 {
    SESSION = "TCP"
    PORT = $port
    REPEAT = "true"
    ENDPOINTS { 127.0.0.1 }
    PACKETS { p : "$1.bin" }
}
ORCHESTRATOR $1 {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 10ms
    SEND 0:64 p COPIES 16 $3 OFFSET 200ms
    FLOOD 0:64 OFFSET 0ms
    DISCONNECT 0:64 OFFSET ${SECONDS_PER_RUN}s
}
SCRIPT
    "$bin" "$dir/$1.ldsh" --quiet --json "$dir/$1.json" > /dev/null
    stop_target
    python3 - "$dir/$1.json" "$dir/$1.target" "$1" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
sink = int(re.search(r"bytes read (\d+)", open(sys.argv[2]).read()).group(1))
t = r["totals"]
# The flood window: from FLOOD to DISCONNECT (the timeline's last two actions).
window = (r["timeline"][-1]["atNanoseconds"] - r["timeline"][-2]["atNanoseconds"]) / 1e9
name = sys.argv[3]
print(f"{name}_bytes_per_s={t['bytesSent']/window:.0f}")
print(f"{name}_packets_per_s={t['packetsSent']/window:.0f}")
print(f"{name}_sink_matches={'yes' if sink == t['bytesSent'] else 'no (sink %d, sent %d)' % (sink, t['bytesSent'])}")
PY
}

echo "iperf3_bytes_per_s=$(printf '%.0f' "$iperf_bps")"
out=$(flood kib 1024 "")
echo "$out"
kib=$(echo "$out" | sed -n 's/^kib_bytes_per_s=//p')
python3 -c "print(f'kib_ratio_to_iperf3={$kib/$iperf_bps:.2f}')"
flood b16 16 ""
flood b16counter 16 'COUNTER 0:4 "big":1'
