#!/usr/bin/env bash
# Dry-run planning speed: a 100,000-session script with 1,000 actions, release build.
# Prints: dry_run_seconds=<best of 5>
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'benchmark-packet-0123456789' > "$dir/p.bin"
{
    echo 'SETTINGS big {'
    echo '    SESSION = "TCP"'
    echo '    PORT = 55555'
    echo '    SHARDS = 2'
    echo '    ENDPOINTS { 127.0.0.1 }'
    echo '    PACKETS { p : "p.bin" }'
    echo '}'
    echo 'ORCHESTRATOR big {'
    echo '    CREATE 100000 OFFSET 0ms'
    echo '    CONNECT 0:100000 OFFSET 10ms'
    for i in $(seq 0 996); do
        lo=$(( (i * 97) % 99000 ))
        echo "    SEND $lo:$(( lo + 1000 )) p COPIES 2 COUNTER 0:8 \"big\":1 OFFSET 1ms"
    done
    echo '    DRAIN 0:100000 OFFSET 1s'
    echo '    DISCONNECT 0:100000 OFFSET 1s'
    echo '}'
} > "$dir/big.ldsh"
best=999
for _ in 1 2 3 4 5; do
    start=$(date +%s.%N)
    .build/release/loadshear "$dir/big.ldsh" --dry-run > "$dir/out.txt"
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc -l)
    if (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
done
echo "actions=$(grep -c '^ *t=' "$dir/out.txt") sessions=100000"
printf 'dry_run_seconds=%.3f\n' "$best"
