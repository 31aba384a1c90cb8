#!/usr/bin/env bash
# TLS benchmark (release build), all on loopback, against the built-in sink in another
# process: `target sink --tls` (its self-signed certificate, VERIFY = "false") and the plain
# `target sink`, in one run:
#   1. Handshakes: SESSIONS new sessions (default 2,000) connect and hold, then close with
#      RST. tls_handshakes_per_s = sessions connected / connect phase (first attempt → last
#      handshake done); tcp_connects_per_s the same over plain TCP; handshake p50/p99.
#   2. Flood: 32 sessions, a 1 KiB packet, FLOOD + REPEAT for SECONDS_PER_RUN (default 5)
#      seconds; bytes/s over TLS and over TCP, and their ratio; the sink's count must match.
# The sink decrypts on the same two cores, so the TLS figures are the pair's, not ours alone.
set -euo pipefail
ulimit -n 20000
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
SESSIONS=${SESSIONS:-2000}
source "$(dirname "$0")/lib.sh"
head -c 1024 /dev/zero | tr '\0' 'x' > "$dir/kib.bin"

# script NAME SESSION TIMELINE: writes $dir/NAME.ldsh for the running target.
script() {
    local tls=""
    [ "$2" = TLS ] && tls='TLS { VERIFY = "false" }'
    cat > "$dir/$1.ldsh" <<SCRIPT
SETTINGS $1 {
    SESSION = "$2"
    PORT = $TARGET_PORT
    REPEAT = "true"
    ENDPOINTS { 127.0.0.1 }
    $tls
    PACKETS { p : "kib.bin" }
}
ORCHESTRATOR $1 {
$3
}
SCRIPT
}

# connects NAME SESSION [--tls]: connect and hold SESSIONS sessions, close with RST.
connects() {
    start_target "$1" sink ${3:-}
    script "$1" "$2" "    CREATE $SESSIONS OFFSET 0ms
    CONNECT 0:$SESSIONS OFFSET 10ms
    DISCONNECT 0:$SESSIONS \"reset\" OFFSET 3s"
    "$bin" "$dir/$1.ldsh" --quiet --json "$dir/$1.json" > /dev/null
    stop_target
    python3 - "$dir/$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, name = r["totals"], sys.argv[2]
phase = r.get("connectPhaseSeconds") or 0
print(f"{name}_connected={t['connectionsSucceeded']}")
print(f"{name}_per_s={t['connectionsSucceeded'] / phase if phase else 0:.0f}")
h = r["latencyMicroseconds"].get("handshake", {})
if h.get("samples"):
    print(f"{name}_handshake_p50_us={h['p50']}")
    print(f"{name}_handshake_p99_us={h['p99']}")
c = r["latencyMicroseconds"]["connect"]
print(f"{name}_connect_p50_us={c['p50']}")
PY
}

# flood NAME SESSION [--tls]
flood() {
    start_target "$1" sink ${3:-}
    script "$1" "$2" "    CREATE 32 OFFSET 0ms
    CONNECT 0:32 OFFSET 10ms
    SEND 0:32 p COPIES 16 OFFSET 500ms
    FLOOD 0:32 OFFSET 0ms
    DISCONNECT 0:32 OFFSET ${SECONDS_PER_RUN}s"
    "$bin" "$dir/$1.ldsh" --quiet --json "$dir/$1.json" > /dev/null
    stop_target
    python3 - "$dir/$1.json" "$dir/$1.target" "$1" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
sink = int(re.search(r"bytes read (\d+)", open(sys.argv[2]).read()).group(1))
t, name = r["totals"], sys.argv[3]
window = (r["timeline"][-1]["atNanoseconds"] - r["timeline"][-2]["atNanoseconds"]) / 1e9
print(f"{name}_bytes_per_s={t['bytesSent'] / window:.0f}")
print(f"{name}_sink_matches={'yes' if sink == t['bytesSent'] else 'no (sink %d, sent %d)' % (sink, t['bytesSent'])}")
PY
}

out=$(connects tls_handshakes TLS --tls; connects tcp_connects TCP; flood tls_flood TLS --tls; flood tcp_flood TCP)
echo "$out"
python3 - <<PY
v = dict(l.split("=", 1) for l in """$out""".splitlines() if "=" in l)
f = lambda k: float(v.get(k, 0) or 0)
print(f"handshake_ratio_to_tcp_connect={f('tls_handshakes_per_s') / max(f('tcp_connects_per_s'), 1):.2f}")
print(f"flood_ratio_tls_to_tcp={f('tls_flood_bytes_per_s') / max(f('tcp_flood_bytes_per_s'), 1):.2f}")
PY
