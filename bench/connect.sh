#!/usr/bin/env bash
# Connect-and-hold benchmark (release build): 10,000 sessions connect to the built-in sink
# in another process and hold for 3 s. Prints the connect rate and the client's peak RSS
# per session (peak RSS of the 10k run minus a 1-session run, divided by 10,000).
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
start_target hold sink
port=$TARGET_PORT
run() {  # $1 = sessions
    cat > "$dir/c$1.ldsh" <<SCRIPT
SETTINGS c {
    SESSION = "TCP"
    PORT = $port
    SHARDS = $(( $1 < 2 ? 1 : 2 ))
    ENDPOINTS { 127.0.0.1 }
}
ORCHESTRATOR c {
    CREATE $1 OFFSET 0ms
    CONNECT 0:$1 OFFSET 10ms
    DISCONNECT 0:$1 OFFSET 3s
}
SCRIPT
    "$bin" "$dir/c$1.ldsh" --quiet
}
base=$(run 1 | sed -n 's/.*peak RSS \([0-9.]*\) \([kMG]*B\).*/\1 \2/p')
full=$(run 10000)
echo "$full" | grep -E "connections|connect phase|memory" | sed 's/^ */# /'
python3 - "$base" "$(echo "$full" | sed -n 's/.*peak RSS \([0-9.]*\) \([kMG]*B\).*/\1 \2/p')" "$(echo "$full" | sed -n 's/.*connect phase \([0-9]*\) connected in \([0-9.]*\) s.*/\1 \2/p')" <<'PY'
import sys
units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
def size(s):
    v, u = s.split()
    return float(v) * units[u]
base, full = size(sys.argv[1]), size(sys.argv[2])
n, secs = sys.argv[3].split()
print(f"connected={n}")
print(f"connect_per_s={int(n)/float(secs):.0f}")
print(f"rss_per_session_bytes={(full-base)/10000:.0f}")
PY
