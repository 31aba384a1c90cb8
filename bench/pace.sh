#!/usr/bin/env bash
# Paced-load benchmark (release build): 10,000 sessions × 10 payloads/s (100,000/s in all)
# against the built-in sink for 20 s. Prints the achieved share of the intended payloads
# and the lag (actual − intended send time) p50/p99/max. Goal: ≥ 99.5%, lag p99 < 1 ms.
# Then the same at 5/s (50,000/s). Each rate is also run by bench/pace_native.c (C, no
# runtime, the same schedule over the same number of threads) against the same sink, so
# what the machine's kernel allows is printed beside Loadshear's figures.
# LOADSHEAR_DIRECT_SOCKETS=0: Loadshear without the direct socket path (docs/metrics.md).
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
start_target pace sink
clang -O2 -o "$dir/pace_native" bench/pace_native.c -lpthread
printf 'ping0123' > "$dir/p.bin"
pace() {  # $1 = payloads per second per session; prints key=value lines prefixed r$1_
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
    PACE 0:10000 $1/s OFFSET 0ms
    DISCONNECT 0:10000 OFFSET 20s
}
SCRIPT
    "$bin" "$dir/pace.ldsh" --quiet --json "$dir/pace.json" > /dev/null || true
    python3 - "$dir/pace.json" "$1" <<'PY'
import json, sys
r, rate = json.load(open(sys.argv[1])), int(sys.argv[2])
t, g = r["totals"], r["generator"]
intended = 10000 * rate * 20  # payloads due before the DISCONNECT 20 s after the start
p = f"r{rate}_"
print(f"{p}intended_payloads={intended}")
print(f"{p}paced_payloads={t['pacedPayloads']}")
print(f"{p}achieved_share={t['pacedPayloads'] / intended * 100:.2f}%")
print(f"{p}lag_p50_us={g.get('lagP50Microseconds')}")
print(f"{p}lag_p99_us={g.get('lagP99Microseconds')}")
print(f"{p}lag_max_us={g.get('lagMaxMicroseconds')}")
print(f"{p}busy={[round(b['busy'], 2) for b in g['busy']]}")
print(f"{p}saturated={g['saturated']} {'; '.join(g['reasons'])}")
PY
    "$dir/pace_native" "$TARGET_PORT" 10000 "$1" 20 "$(nproc)" | sed "s/^/r$1_/"
}
pace 10
pace 5
