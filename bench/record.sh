#!/usr/bin/env bash
# Metric recording cost (release build): ns per counter add (a single-writer relaxed atomic
# load + store) and per latency-histogram record (an increment in a pre-allocated HDR
# histogram), 50M of each in a tight loop; then the heap allocations of those paths and of
# the snapshot hand-off, counted with ordo-one/malloc-interposer (each must be 0).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
.build/release/loadshear _bench-record
LD_PRELOAD=.build/release/libMallocInterposerSwift.so .build/release/loadshear-allocations
