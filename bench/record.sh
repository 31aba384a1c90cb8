#!/usr/bin/env bash
# Metric recording cost (release build): ns per counter add (a single-writer relaxed atomic
# load + store) and per latency-histogram record (an increment in a pre-allocated HDR
# histogram), 50M of each in a tight loop.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
.build/release/loadshear _bench-record
