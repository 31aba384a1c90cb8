#!/usr/bin/env bash
# Scale-out benchmark (release build), on loopback: the same 1 KiB flood (64 sessions, FLOOD
# + REPEAT, 10 s) as one process and as 2 segments (2 processes, --segment i/2 with a
# common --start-at), each against the built-in sink. Prints each run's throughput, the
# merged totals (which must equal the sum of the segments' and the sink's count), and how
# long `loadshear merge` takes for 100 reports.
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
source "$(dirname "$0")/lib.sh"
start_target seg sink
head -c 1024 /dev/zero | tr '\0' 'x' > "$dir/p.bin"
cat > "$dir/flood.ldsh" <<SCRIPT
SETTINGS f {
    SESSION = "TCP"
    PORT = $TARGET_PORT
    REPEAT = "true"
    ENDPOINTS { 127.0.0.1 }
    PACKETS { p : "p.bin" }
}
ORCHESTRATOR f {
    CREATE 64 OFFSET 0ms
    CONNECT 0:64 OFFSET 10ms
    SEND 0:64 p COPIES 16 COUNTER 0:8 "big":1 OFFSET 200ms
    FLOOD 0:64 OFFSET 0ms
    DISCONNECT 0:64 OFFSET ${SECONDS_PER_RUN}s
}
SCRIPT
rate() { python3 -c "import json; r=json.load(open('$1')); print(f\"{r['totals']['bytesSent'] / r['durationSeconds'] / 1e9:.2f}\")"; }
"$bin" "$dir/flood.ldsh" --quiet --json "$dir/one.json" > /dev/null
echo "one_process_GBps=$(rate "$dir/one.json")"
start=$(python3 -c "import time; print(f'{time.time() + 2:.3f}')")
"$bin" "$dir/flood.ldsh" --segment 0/2 --start-at "$start" --quiet --json "$dir/s0.json" > /dev/null &
a=$!
"$bin" "$dir/flood.ldsh" --segment 1/2 --start-at "$start" --quiet --json "$dir/s1.json" > /dev/null &
b=$!
wait $a $b
echo "segment0_GBps=$(rate "$dir/s0.json")"
echo "segment1_GBps=$(rate "$dir/s1.json")"
"$bin" merge "$dir/s0.json" "$dir/s1.json" --json "$dir/m.json" > /dev/null 2>&1
echo "merged_GBps=$(rate "$dir/m.json")"
python3 - "$dir/s0.json" "$dir/s1.json" "$dir/m.json" <<'PY'
import json, sys
s0, s1, m = (json.load(open(p)) for p in sys.argv[1:])
for k in ("bytesSent", "packetsSent", "connectionsSucceeded"):
    total = s0["totals"][k] + s1["totals"][k]
    print(f"merged_{k}={m['totals'][k]} sum_of_segments={total} equal={'yes' if m['totals'][k] == total else 'NO'}")
PY
# merge time for 100 reports: 100 segments' reports, made from s0.json by renumbering.
python3 - "$dir/s0.json" "$dir/many" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
os.makedirs(sys.argv[2], exist_ok=True)
for i in range(100):
    r["run"]["segment"] = {"index": i, "count": 100, "sessions": [i, i + 1]}
    json.dump(r, open(f"{sys.argv[2]}/r{i}.json", "w"))
PY
t0=$(date +%s.%N)
"$bin" merge "$dir"/many/r*.json --json "$dir/m100.json" > /dev/null 2>&1
t1=$(date +%s.%N)
echo "merge_100_reports_seconds=$(python3 -c "print(f'{$t1 - $t0:.2f}')")"
