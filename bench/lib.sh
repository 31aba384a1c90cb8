# Shared by the benchmarks: a release build, a scratch directory, and built-in targets on
# a free port in their own process.
set -euo pipefail
cd "$(dirname "$0")/.."
# LOADSHEAR_BIN runs another build (an older one, to compare) instead of this checkout's.
if [ -z "${LOADSHEAR_BIN:-}" ]; then swift build -c release >/dev/null; fi
bin=${LOADSHEAR_BIN:-.build/release/loadshear}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

# start_target NAME ARGS...: starts `loadshear target ARGS --port 0`; sets TARGET_PID and
# TARGET_PORT; its output goes to $dir/NAME.target.
start_target() {
    local name=$1
    shift
    "$bin" target "$@" --port 0 > "$dir/$name.target" &
    TARGET_PID=$!
    pids+=("$TARGET_PID")
    for _ in $(seq 100); do grep -q listening "$dir/$name.target" 2>/dev/null && break; sleep 0.05; done
    TARGET_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/$name.target")
}

# stop_target: lets the target read what is still queued on its port, then stops it
# (SIGINT) so it prints its counts.
stop_target() {
    for _ in $(seq 100); do ss -tn state established "( sport = :$TARGET_PORT )" | grep -q ":$TARGET_PORT" || break; sleep 0.1; done
    kill -INT "$TARGET_PID"
    wait "$TARGET_PID" || true
}
