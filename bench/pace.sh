#!/usr/bin/env bash
# Paced-load benchmark (release build): 10,000 sessions × 10 payloads/s (100,000/s in all)
# against the built-in sink for 20 s. Prints the achieved share of the intended payloads
# and the lag (actual − intended send time) p50/p99/max. Goal: ≥ 99.5%, lag p99 < 1 ms.
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
start_target pace sink
printf 'ping0123' > "$dir/p.bin"
cat > "$dir/pace.ldsh" <<SCRIPT
SETTINGS p {
    SESSION = "TCP"
    PORT = $TARGET_PORT
    REPEAT = "true"
    ENDPOINTS { 127.0.0.1 }
    PACKETS { p : "p.bin" }
}
ORCHESTRATOR p {
    CREATE 10000 OFFSET 0ms
    CONNECT 0:10000 OFFSET 10ms
    SEND 0:10000 p COPIES 1 OFFSET 3s
    PACE 0:10000 10/s OFFSET 0ms
    DISCONNECT 0:10000 OFFSET 20s
}
SCRIPT
"$bin" "$dir/pace.ldsh" --quiet --json "$dir/pace.json" > /dev/null || true
python3 - "$dir/pace.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, g = r["totals"], r["generator"]
intended = 10000 * (10 * 20 + 1)  # payload 0 is due at the phase start
print(f"intended_payloads={intended}")
print(f"paced_payloads={t['pacedPayloads']}")
print(f"achieved_share={t['pacedPayloads'] / intended * 100:.2f}%")
print(f"lag_p50_us={g.get('lagP50Microseconds')}")
print(f"lag_p99_us={g.get('lagP99Microseconds')}")
print(f"lag_max_us={g.get('lagMaxMicroseconds')}")
print(f"busy={[round(b['busy'], 2) for b in g['busy']]}")
print(f"saturated={g['saturated']} {'; '.join(g['reasons'])}")
PY
