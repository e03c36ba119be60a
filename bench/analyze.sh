#!/usr/bin/env bash
# Capture-file benchmark: `l2watch analyze` against tcpdump's bare read and arpwatch on the same files,
# side by side.
#
#   bench/analyze.sh [RUNS]        (default 7 runs of each tool on each capture)
#
# Generates /tmp/realistic.pcap and /tmp/flood.pcap (1,000,000 frames each, examples/gencap.rs) when
# missing, then times, per capture:
#   l2watch analyze --format json FILE                 the whole job: read, decode, detect, report
#   tcpdump -r FILE -w /dev/null                       libpcap reading every record, nothing else
#   arpwatch -d -f DAT -r FILE                         the classic tool, in an empty network namespace so
#                                                      its reverse DNS lookups fail at once (needs root)
# and prints wall time (best and median), frames/s at the best time, and each tool's best time over
# l2watch's (how many times faster l2watch is). The captures are read once first, so every run reads
# from the page cache. A tool stops early once its runs took BUDGET seconds (default 20).
#
# Installs nothing. Uses Debian's tcpdump and arpwatch when present (apt-get install tcpdump arpwatch);
# a missing tool's rows are skipped. Touches nothing outside a temporary directory and the namespace
# it creates (both removed on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-7}
CAPTURES=(/tmp/realistic.pcap /tmp/flood.pcap)

cargo build --release --quiet --bin l2watch --example gencap
BIN=$PWD/target/release/l2watch
for cap in "${CAPTURES[@]}"; do
  if [ ! -s "$cap" ]; then
    mode=$(basename "$cap" .pcap)
    target/release/examples/gencap "$mode" "$cap" >/dev/null
  fi
done

WORK=$(mktemp -d)
NS=
cleanup() {
  [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

have() { command -v "$1" >/dev/null 2>&1; }
HAVE_TCPDUMP=; have tcpdump && HAVE_TCPDUMP=1
HAVE_ARPWATCH=
if have arpwatch; then
  if [ "$(id -u)" = 0 ] && ip netns add "l2wbench$$" 2>/dev/null; then
    NS=l2wbench$$
    HAVE_ARPWATCH=1
  else
    echo "note: arpwatch needs root (an empty network namespace stubs its DNS): skipped" >&2
  fi
fi
[ -n "$HAVE_TCPDUMP" ] || echo "note: tcpdump not found (Debian package tcpdump): skipped" >&2
have arpwatch || echo "note: arpwatch not found (Debian package arpwatch): skipped" >&2

# Seconds of wall time for one run of "$@", to the microsecond; output and exit status are ignored.
wall() {
  local t0 t1
  t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || true
  t1=$EPOCHREALTIME
  echo "$t0 $t1" | awk '{printf "%.6f\n", $2 - $1}'
}

# Best and median of RUNS runs: "BEST MEDIAN RUNS". A tool that has used BUDGET seconds stops early
# (arpwatch takes over a minute per run on the flood).
BUDGET=${BUDGET:-20}
timed() {
  local i t spent=0
  for ((i = 0; i < RUNS; i++)); do
    t=$(wall "$@")
    echo "$t"
    spent=$(awk -v s="$spent" -v t="$t" 'BEGIN {print s + t}')
    awk -v s="$spent" -v b="$BUDGET" 'BEGIN {exit !(s > b)}' && break
  done | sort -g | awk '{t[NR] = $1} END {printf "%.6f %.6f %d\n", t[1], t[int((NR + 1) / 2)], NR}'
}

arpwatch_run() {
  : > "$WORK/arp.dat"
  # Debian's arpwatch changes directory before opening -r: absolute paths only.
  ip netns exec "$NS" arpwatch -d -f "$WORK/arp.dat" -r "$1"
}

# One line of the table: TOOL BEST MEDIAN RUNS, with frames/s at the best time and the tool's best time
# over l2watch's (how many times faster l2watch is).
row() {
  local ratio=-
  if [ "$1" != "l2watch analyze --format json" ]; then
    ratio=$(awk -v o="$2" -v l="$l2_best" 'BEGIN {printf "%.2f", o / l}')
  fi
  printf '%-10s %-32s %5s %10.4f %10.4f %11.2fM %12s\n' "$name" "$1" "$4" "$2" "$3" \
    "$(awk -v n="$frames" -v t="$2" 'BEGIN {print n / t / 1e6}')" "$ratio"
}

printf '%-10s %-32s %5s %10s %10s %12s %12s\n' capture tool runs "best s" "median s" "frames/s" "/ l2watch"
for cap in "${CAPTURES[@]}"; do
  cat "$cap" >/dev/null   # into the page cache
  name=$(basename "$cap" .pcap)
  # Frames in the capture, as l2watch counts them (its exit status says whether it found conflicts).
  frames=$({ "$BIN" analyze --format json "$cap" 2>/dev/null || true; } |
    awk -F'[:,]' '/"total"/ {gsub(/ /, "", $2); print $2; exit}')
  read -r l2_best l2_med l2_runs < <(timed "$BIN" analyze --format json "$cap")
  row "l2watch analyze --format json" "$l2_best" "$l2_med" "$l2_runs"
  if [ -n "$HAVE_TCPDUMP" ]; then
    read -r b m n < <(timed tcpdump -r "$cap" -w /dev/null)
    row "tcpdump -r FILE -w /dev/null" "$b" "$m" "$n"
  fi
  if [ -n "$HAVE_ARPWATCH" ]; then
    read -r b m n < <(timed arpwatch_run "$cap")
    row "arpwatch -d -r FILE (no DNS)" "$b" "$m" "$n"
  fi
done
echo "($frames frames per capture, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
