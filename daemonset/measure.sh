#!/usr/bin/env bash
# Measures what the DaemonSet's requests and limits are based on: l2watch's resident memory and CPU,
# run with daemonset/base/config.yaml on a LAN of two network namespaces (a veth pair), idle and under a
# flood of random ARP squatters (every frame a new address and MAC, the worst case for its tables).
# Prints RSS (now and peak, from /proc) and CPU time per phase.
#
# Usage: daemonset/measure.sh [BINARY] [FLOOD_FRAMES] [IDLE_SECONDS]
#   BINARY defaults to target/release/l2watch (cargo build --release first).
# Needs: root (network namespaces, CAP_NET_RAW), iproute2, python3, curl, bc. Everything it creates is
# removed on exit; traffic stays inside its namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(realpath "${1:-target/release/l2watch}")
frames=${2:-300000}
idle=${3:-60}
for tool in ip python3 curl bc; do
  command -v "$tool" >/dev/null || { echo "measure.sh: $tool not found" >&2; exit 127; }
done
[ -x "$bin" ] || { echo "measure.sh: $bin is not an executable: build it first" >&2; exit 2; }

node=l2wm-node-$$
lan=l2wm-lan-$$
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  ip netns del "$node" 2>/dev/null || true
  ip netns del "$lan" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$node"
ip netns add "$lan"
ip -n "$node" link add eth0 type veth peer name eth0 netns "$lan"
ip -n "$node" addr add 10.0.0.1/16 dev eth0
ip -n "$lan" addr add 10.0.0.2/16 dev eth0
for ns in "$node" "$lan"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done
# The config names no interface: l2watch takes the default route's, as on a node.
ip -n "$node" route add default via 10.0.0.2

# The DaemonSet's command line, minus the API: --inventory none tracks every address (the most state).
ip netns exec "$node" "$bin" run --config daemonset/base/config.yaml --inventory none \
  --state "$work/state.json" --listen 127.0.0.1:9787 2>"$work/log" &
pid=$!

get() { ip netns exec "$node" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:9787$1" || true; }
for _ in $(seq 100); do
  [ "$(get /readyz)" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
[ "$(get /readyz)" = 200 ] || { echo "measure.sh: /readyz never 200" >&2; cat "$work/log" >&2; exit 1; }

tick=$(getconf CLK_TCK)
cpu() { awk -v t="$tick" '{printf "%.3f", ($14 + $15) / t}' "/proc/$pid/stat"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
report() {
  printf '%-28s RSS %6.1f MiB  peak %6.1f MiB  CPU %7.3f s  over %5.1f s = %5.1f millicores\n' \
    "$1" "$(echo "$(kib VmRSS) / 1024" | bc -l)" "$(echo "$(kib VmHWM) / 1024" | bc -l)" \
    "$2" "$3" "$(echo "$2 * 1000 / $3" | bc -l)"
}

c0=$(cpu); t0=$(date +%s.%N)
sleep "$idle"
c1=$(cpu); t1=$(date +%s.%N)
report "idle ${idle}s" "$(echo "$c1 - $c0" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"

ip netns exec "$lan" python3 bench/random-arp.py eth0 "$frames"
c2=$(cpu); t2=$(date +%s.%N)
report "flood of $frames frames" "$(echo "$c2 - $c1" | bc -l)" "$(echo "$t2 - $t1" | bc -l)"
sleep 10
c3=$(cpu); t3=$(date +%s.%N)
report "10 s after the flood" "$(echo "$c3 - $c2" | bc -l)" "$(echo "$t3 - $t2" | bc -l)"
counted=$(ip netns exec "$node" curl -s http://127.0.0.1:9787/metrics |
  awk '/^l2watch_frames_total/ {s += $2} END {print s + 0}')
dropped=$(ip netns exec "$node" curl -s http://127.0.0.1:9787/metrics |
  awk '/^l2watch_frames_dropped_total/ {s += $2} END {print s + 0}')
echo "frames counted $counted, kernel drops $dropped"


# SIGTERM as the kubelet sends it: how long the stop takes bounds terminationGracePeriodSeconds.
s0=$(date +%s.%N)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
printf 'SIGTERM to exit: %.3f s, exit status %d\n' "$(echo "$(date +%s.%N) - $s0" | bc -l)" "$status"
