#!/usr/bin/env bash
# Connect-and-hold benchmark (release build), against bench/connect_sink.c (a one-thread C
# epoll accept loop in its own process, a fresh one for every measurement). Loadshear
# connects 10,000 and then 15,000 sessions, holds them for 3 s and disconnects them; in the
# same run bench/connect_native.c (a plain one-thread nonblocking connect loop, the least a
# client can do) connects as many with the same window. Prints per size:
#   connect_per_s            connected / connectPhaseSeconds (first attempt → last connect)
#   rss_per_session_bytes    (peakRSSBytes − a base run's) / (sessions − the base's): the
#                            base run has one session per shard, so the shards' own fixed
#                            cost (a thread, its malloc arena, its event loop: ~2.7 MB for
#                            the second shard) is not counted as a per-session cost
#   held_rss_per_session_bytes  the same from VmRSS sampled while all sessions are idle
#                            (2.5 s in): the goal's "RSS per idle session"
#   close_all_seconds        DISCONNECT's planned time → the run's end (every session closed)
#   native_connect_per_s     the plain loop's rate; ratio = connect_per_s / native
# The 10,000 run's keys carry no suffix (connected, connect_per_s, rss_per_session_bytes as
# before); the 15,000 run's end in _15000.
#
# Environment: LOADSHEAR_DIRECT_SOCKETS=0 (the bootstrap's connect and NIO's writes instead of
# sockets Loadshear connects itself, see docs/metrics.md; exported, so the run inherits it),
# CONNECT_WINDOW (the script setting, per shard; default 1024, also the plain
# loop's window), SHARDS (default 2), CLOSE=reset|fin (default reset), SIZES (default
# "10000 15000"), REPS (default 1: loadshear and the plain loop alternate REPS times per
# size and the medians are printed, with every rep's rate on a # line; this VM varies by
# ±30% from one run to the next), PERF=FILE (perf record -g the first 10,000 run's
# loadshear into FILE).
#
# Why CLOSE=reset: the client closes first, and with FIN every run leaves its sessions in
# TIME_WAIT for 60 s; connects to a port with thousands of them in TIME_WAIT ran at ~10k/s
# instead of ~28k/s here (plain loop), so runs were not comparable. With RST
# (DISCONNECT "reset", SO_LINGER 0) nothing is left behind.
# Why two sink addresses above 10,000: Linux picks connect() ports from the even half of
# ip_local_port_range first (~14,100 of 28,232 here); past that every connect scans the
# taken half, and the plain loop fell from 30k/s to 6.5k/s at 15,000 to one address.
set -euo pipefail
ulimit -n 20000
source "$(dirname "$0")/lib.sh"
window=${CONNECT_WINDOW:-1024}
shards=${SHARDS:-2}
close=${CLOSE:-reset}
sizes=${SIZES:-10000 15000}
reps=${REPS:-1}
clang -O2 -o "$dir/connect_sink" bench/connect_sink.c
clang -O2 -o "$dir/connect_native" bench/connect_native.c

# start_sink ADDRESSES: a fresh sink (a fresh port: no TIME_WAIT from an earlier run on it);
# sets SINK_PID and SINK_PORT.
start_sink() {
    "$dir/connect_sink" 0 "$1" > "$dir/sink.out" &
    SINK_PID=$!
    pids+=("$SINK_PID")
    for _ in $(seq 100); do grep -q port "$dir/sink.out" 2>/dev/null && break; sleep 0.05; done
    SINK_PORT=$(sed -n 's/port //p' "$dir/sink.out")
}
stop_sink() {
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
}

# run N ADDRESSES REP: loadshear connects N sessions, holds 3 s, disconnects; prints the JSON
# report's path.
run() {
    local n=$1 addrs=$2 endpoints="127.0.0.1" reset="" status=0
    for k in $(seq 2 "$addrs"); do endpoints="$endpoints, 127.0.0.$k"; done
    [ "$close" = reset ] && reset=' "reset"'
    start_sink "$addrs"
    cat > "$dir/c$n.ldsh" <<SCRIPT
SETTINGS c {
    SESSION = "TCP"
    PORT = $SINK_PORT
    SHARDS = $(( n < shards ? n : shards ))
    CONNECT_WINDOW = $window
    ENDPOINTS { $endpoints }
}
ORCHESTRATOR c {
    CREATE $n OFFSET 0ms
    CONNECT 0:$n OFFSET 10ms
    DISCONNECT 0:$n$reset OFFSET 3s
}
SCRIPT
    if [ -n "${PERF:-}" ] && [ "$n" = 10000 ] && [ ! -e "$dir/perf.done" ]; then
        touch "$dir/perf.done"
        perf record -e cpu-clock -g -o "$PERF" -- "$bin" "$dir/c$n.ldsh" --quiet --json "$dir/c$n.json" \
            > /dev/null 2> "$dir/perf.err" || true
    else
        "$bin" "$dir/c$n.ldsh" --quiet --json "$dir/c$n.json" > /dev/null &
        local pid=$!
        # RSS while every session is idle: once the connect phase is over (the report's
        # connectPhaseSeconds is under 2.5 s at these sizes), before DISCONNECT at 3 s.
        sleep 2.5
        sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" > "$dir/c$n.$3.held" 2>/dev/null || true
        wait "$pid" || status=$?
    fi
    stop_sink  # also when the run failed: this subshell's sink is not in the trap's list
    [ "${status:-0}" = 0 ] || { echo "connect.sh: loadshear exited $status ($n sessions)" >&2; return "$status"; }
    mv "$dir/c$n.json" "$dir/c$n.$3.json"
    # The held RSS rides in the report's copy, for the summary below.
    python3 - "$dir/c$n.$3.json" "$dir/c$n.$3.held" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
try:
    r["heldRSSBytes"] = int(open(sys.argv[2]).read().strip()) * 1024
except (OSError, ValueError):
    r["heldRSSBytes"] = 0
json.dump(r, open(sys.argv[1], "w"))
PY
    echo "$dir/c$n.$3.json"
}

# native N ADDRESSES REP: the plain loop, same window, held 3 s like the sessions.
native() {
    start_sink "$2"
    "$dir/connect_native" "$SINK_PORT" "$1" "$window" 3000 "$close" "$2" > "$dir/native$1.$3.out" || true
    stop_sink
    echo "$dir/native$1.$3.out"
}

echo "window=$window"
echo "shards=$shards"
echo "close=$close"
base=$(run "$shards" 1 0)
for n in $sizes; do
    addrs=$(( (n + 9999) / 10000 ))
    reports=() nats=()
    for rep in $(seq "$reps"); do
        reports+=("$(run "$n" "$addrs" "$rep")")
        nats+=("$(native "$n" "$addrs" "$rep")")
    done
    python3 - "$base" "$n" "$addrs" "$shards" "${reports[@]}" "${nats[@]}" <<'PY'
import json, statistics, sys
base = json.load(open(sys.argv[1]))
n, addrs, base_n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])  # base_n: one per shard
files = sys.argv[5:]
reports = [json.load(open(f)) for f in files[: len(files) // 2]]
nats = [dict(l.strip().split("=", 1) for l in open(f) if "=" in l) for f in files[len(files) // 2 :]]
sfx = "" if n == 10000 else f"_{n}"
med = statistics.median
oks, rates, rsss, helds, closes = [], [], [], [], []
for r in reports:
    t = r["totals"]
    ok = t.get("connectionsSucceeded", 0)
    phase = r.get("connectPhaseSeconds") or 0
    disc = max(a["atNanoseconds"] for a in r["timeline"] if a["action"].upper() == "DISCONNECT") / 1e9
    oks.append(ok)
    rates.append(ok / phase if phase else 0)
    rsss.append((r["peakRSSBytes"] - base["peakRSSBytes"]) / (n - base_n))
    if r["heldRSSBytes"] > 0:  # the PERF run is not sampled
        helds.append((r["heldRSSBytes"] - base["heldRSSBytes"]) / (n - base_n))
    closes.append(r["durationSeconds"] - disc)
    print(f"# {n} sessions to {addrs} address(es): {ok} connected, {t.get('connectionsFailed', 0)} failed in "
          f"{phase:.3f} s; peak RSS {r['peakRSSBytes'] / 1e6:.1f} MB ({base_n} sessions, one per shard: {base['peakRSSBytes'] / 1e6:.1f} MB)")
nrates = [float(x.get("native_connect_per_s", 0)) for x in nats]
if len(reports) > 1:
    print(f"# reps: loadshear {' '.join(f'{x:.0f}' for x in rates)}; plain loop {' '.join(f'{x:.0f}' for x in nrates)}")
rate, nrate, rss = med(rates), med(nrates), med(rsss)
print(f"connected{sfx}={min(oks)}")
print(f"connect_per_s{sfx}={rate:.0f}")
print(f"rss_per_session_bytes{sfx}={rss:.0f}")
print(f"held_rss_per_session_bytes{sfx}={med(helds) if helds else 0:.0f}")
print(f"close_all_seconds{sfx}={med(closes):.3f}")
print(f"native_connected{sfx}={min(int(x.get('native_connected', 0)) for x in nats)}")
print(f"native_connect_per_s{sfx}={nrate:.0f}")
print(f"native_close_seconds{sfx}={med(float(x.get('native_close_seconds', 0)) for x in nats):.4f}")
print(f"ratio{sfx}={rate / nrate if nrate else 0:.2f}")
if n == 10000:
    print(f"# goal 10,000: >= 40000/s {'met' if rate >= 40000 else 'not met'}; "
          f">= half the plain loop {'met' if nrate and rate >= nrate / 2 else 'not met'}")
elif n == 15000:
    held = med(helds) if helds else 0
    verdict = "unknown (no VmRSS sample)" if held <= 0 else ("met" if held <= 3072 else "not met")
    print(f"# goal 15,000: <= 3 KiB RSS per idle session {verdict} "
          f"(held {med(helds):.0f} B; the peak, with the connect phase's transient memory, {rss:.0f} B)")
PY
done
