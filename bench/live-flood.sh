#!/usr/bin/env bash
# Live flood benchmark: l2watch listens on one end of a veth pair in a network namespace, the flood
# example sends on the other; then the same flood with Debian's arpwatch listening instead.
#
#   bench/live-flood.sh [realistic|flood] [SECONDS] [PPS] [FRAMES] [--once]
#
#   realistic 10 0        10 s of mixed ARP/ND at the highest rate the sender reaches
#   realistic 10 300000   10 s at 300 kpps
#   flood 30 0 1000000 --once   1,000,000 random IP/MAC pairs, each sent once
#
# Reports offered pps, frames sent vs counted by l2watch, kernel drops, l2watch CPU ns per frame, idle and
# peak RSS, series on /metrics; and arpwatch's CPU ns per frame and RSS. Needs root, iproute2, arpwatch.
# Touches nothing outside the two namespaces it creates (removed on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-realistic}
SECS=${2:-10}
PPS=${3:-0}
FRAMES=${4:-1000000}
ONCE=${5:-}

cargo build --release --quiet --bin l2watch --example flood
BIN=target/release/l2watch
FLOOD=target/release/examples/flood

NS=l2wbench$$
RX=$NS-rx
TX=$NS-tx
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del "$RX" 2>/dev/null || true
  ip netns del "$TX" 2>/dev/null || true
  rm -rf "$WORK"
}
WORK=$(mktemp -d)
trap cleanup EXIT
ip netns add "$RX"
ip netns add "$TX"
ip -n "$RX" link add veth0 type veth peer name veth1 netns "$TX"
ip -n "$RX" link set lo up
ip -n "$RX" link set veth0 up
# arpwatch refuses an interface without an IPv4 network; an address nobody in the flood uses.
ip -n "$RX" addr add 172.31.255.1/30 dev veth0
ip -n "$TX" link set veth1 up

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, in clock ticks
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
metric_sum() { grep -E "^$1(\{| )" "$WORK/metrics" | awk '{s += $NF} END {printf "%.0f", s}'; }
HZ=$(getconf CLK_TCK)

flood() {
  ip netns exec "$TX" "$FLOOD" --interface veth1 --mode "$MODE" --seconds "$SECS" --pps "$PPS" \
    --frames "$FRAMES" $ONCE
}

echo "== l2watch ($MODE, ${SECS}s, pps limit ${PPS:-0}, $FRAMES distinct frames $ONCE)"
ip netns exec "$RX" "$BIN" run ${L2W_ARGS:-} -i veth0 --no-probe --listen 127.0.0.1:9787 --log-level warn \
  2> "$WORK/l2watch.log" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 50); do
  ip netns exec "$RX" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9787' 2>/dev/null && break
  sleep 0.1
done
sleep 2
IDLE_RSS=$(status_kib "$PID" VmRSS)
C0=$(cpu_ticks "$PID")
U0=$(user_ticks "$PID")
SENT_JSON=$(flood)
sleep 1.5   # let the last ring blocks retire and one publish tick pass
C1=$(cpu_ticks "$PID")
U1=$(user_ticks "$PID")
ip netns exec "$RX" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9787; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' \
  > "$WORK/metrics"
SENT=$(echo "$SENT_JSON" | sed -E 's/.*"sent": ([0-9]+).*/\1/')
OFFERED=$(echo "$SENT_JSON" | sed -E 's/.*"pps": ([0-9]+).*/\1/')
COUNTED=$(( $(metric_sum l2watch_frames_total) + $(metric_sum l2watch_frames_malformed_total) ))
DROPPED=$(metric_sum l2watch_frames_dropped_total)
SERIES=$(grep -c '^[a-z]' "$WORK/metrics")
PEAK_RSS=$(status_kib "$PID" VmHWM)
CPU_NS=$(awk -v t=$((C1 - C0)) -v hz="$HZ" -v n="$COUNTED" 'BEGIN {printf "%.0f", n ? t / hz * 1e9 / n : 0}')
echo "sender:            $SENT_JSON"
echo "offered pps:       $OFFERED"
echo "frames sent:       $SENT"
echo "frames counted:    $COUNTED"
echo "kernel drops:      $DROPPED"
echo "cpu per frame:     ${CPU_NS} ns   ($(( C1 - C0 )) ticks of 1/${HZ} s, $(( U1 - U0 )) of them user)"
echo "idle rss:          $(( IDLE_RSS / 1024 )) MiB ($IDLE_RSS KiB)"
echo "peak rss:          $(( PEAK_RSS / 1024 )) MiB ($PEAK_RSS KiB)"
echo "series on /metrics: $SERIES (evicted: $(metric_sum l2watch_series_evicted_total))"
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true

if command -v arpwatch > /dev/null; then
  echo "== arpwatch, same flood"
  : > "$WORK/arp.dat"
  # -d: stay in the foreground and report to stderr instead of mailing; DNS fails at once in the netns.
  ip netns exec "$RX" arpwatch -d -i veth0 -f "$WORK/arp.dat" > /dev/null 2>&1 &
  APID=$!
  PIDS+=("$APID")
  sleep 2
  A_IDLE=$(status_kib "$APID" VmRSS)
  A0=$(cpu_ticks "$APID")
  SENT_JSON=$(flood)
  sleep 1.5
  A1=$(cpu_ticks "$APID")
  A_PEAK=$(status_kib "$APID" VmHWM)
  SENT=$(echo "$SENT_JSON" | sed -E 's/.*"sent": ([0-9]+).*/\1/')
  echo "sender:            $SENT_JSON"
  echo "cpu per frame:     $(awk -v t=$((A1 - A0)) -v hz="$HZ" -v n="$SENT" 'BEGIN {printf "%.0f", t / hz * 1e9 / n}') ns (per frame sent: arpwatch reports no frame or drop counts)"
  echo "idle rss:          $(( A_IDLE / 1024 )) MiB, peak rss: $(( A_PEAK / 1024 )) MiB"
  kill -TERM "$APID" 2>/dev/null || true
else
  echo "== arpwatch not installed (apt-get install arpwatch) - skipped"
fi
