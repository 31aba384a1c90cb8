#!/usr/bin/env bash
# Metric recording cost (release build): ns per counter add and per latency-histogram
# record. Then the same under valgrind with 1,000 and 1,000,000 records: the heap
# allocation counts must be equal, i.e. recording a sample never allocates.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
bin=.build/release/loadshear
"$bin" _bench-record
allocs() { valgrind "$bin" _bench-record --iterations "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
a=$(allocs 1000)
b=$(allocs 1000000)
echo "heap_allocs_1k_records=$a"
echo "heap_allocs_1m_records=$b"
echo "allocations_per_record=$(python3 -c "print(($b - $a) / (999000 * 2))")"
