#!/usr/bin/env bash
# Runs the linux/amd64 image from the archive image/build.sh wrote, the way the DaemonSet runs it (UID 0,
# every capability dropped but NET_RAW, no_new_privs, read-only root file system, the node's network),
# on a LAN of two network namespaces made for the test, and checks what an operator would:
#   - it captures (l2watch_frames_total grows) and serves /metrics;
#   - a foreign device taking the Service IP is l2watch_conflict_active{kind="foreign_mac"} 1;
#   - `podman stop` (SIGTERM to PID 1) ends it with status 0 within 2 s;
#   - without NET_RAW it exits non-zero, saying CAP_NET_RAW in its log;
#   - the linux/arm64 image's binary is aarch64 and runs (under qemu-user), with the crate's version.
#
#   image/test.sh [ARCHIVE]          default target/oci/l2watch.oci.tar
#
# Needs root and (Debian) podman runc skopeo iproute2 iputils-arping python3 file qemu-user-static.
# Podman's storage (vfs) and config live in a temporary directory removed at the end, as are the
# namespaces and containers.
set -euo pipefail

cd "$(dirname "$0")/.."
archive=${1:-target/oci/l2watch.oci.tar}
case $archive in /*) ;; *) archive=$PWD/$archive ;; esac

fail() {
  echo "image/test.sh: FAIL: $*" >&2
  exit 1
}

missing=()
for tool in podman runc skopeo ip arping python3 file qemu-aarch64-static; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  fail "missing ${missing[*]}: apt-get install -y podman runc skopeo iproute2 iputils-arping python3 file" \
    "qemu-user-static"
fi
[ "$(id -u)" = 0 ] || fail "run it as root (network namespaces, podman with runc)"
[ -f "$archive" ] || fail "no image archive at $archive: run image/build.sh first"

image=l2watch-under-test:latest
vip=10.79.0.100
mac_node=02:4c:32:00:01:0a
mac_foreign=02:4c:32:00:01:f0
tag=$$
ns_node=l2wimg-node-$tag
ns_foreign=l2wimg-foreign-$tag
name=l2wimg-$tag
tmp=$(mktemp -d /tmp/l2watch-image-test.XXXXXX)

cleanup() {
  set +e
  podman rm -f -t 0 "$name" "$name-nocap" >/dev/null 2>&1
  podman rmi -f "$image" >/dev/null 2>&1
  ip netns del "$ns_node" 2>/dev/null
  ip netns del "$ns_foreign" 2>/dev/null
  # Podman mounts a tmpfs for each container's /dev/shm under its storage: unmount what rm left.
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | xargs -r umount -l
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$tmp/storage"
runroot = "$tmp/run"
EOF
# runc: crun fails on these machines' cgroups; cgroupfs and file events: no systemd here.
cat >"$tmp/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$tmp/events.log"
runtime = "runc"
tmp_dir = "$tmp/tmp"
EOF
export CONTAINERS_STORAGE_CONF=$tmp/storage.conf
export CONTAINERS_CONF=$tmp/containers.conf
export STORAGE_DRIVER=vfs
export TMPDIR=$tmp

start=$SECONDS
# From the multi-arch index, the amd64 image (the machine's own platform, which the test can run).
skopeo copy --quiet --override-os linux --override-arch amd64 "oci-archive:$archive" \
  "containers-storage:$image"
arch=$(podman image inspect --format '{{.Architecture}}' "$image")
[ "$arch" = amd64 ] || fail "loaded a $arch image, expected amd64"
echo "== loaded the amd64 image in $((SECONDS - start)) s"

# The LAN: one cable (a veth pair) between the node l2watch runs on and a foreign device.
ip netns add "$ns_node"
ip netns add "$ns_foreign"
ip link add "l2wi-n$tag" type veth peer name "l2wi-f$tag"
ip link set "l2wi-n$tag" netns "$ns_node"
ip link set "l2wi-f$tag" netns "$ns_foreign"
lan_up() { # ns, veth, mac, address
  ip -n "$1" link set "$2" name eth0
  ip -n "$1" link set eth0 address "$3"
  ip -n "$1" addr add "$4" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
lan_up "$ns_node" "l2wi-n$tag" "$mac_node" 10.79.0.11/24
lan_up "$ns_foreign" "l2wi-f$tag" "$mac_foreign" 10.79.0.50/24

# node-a announces the Service IP (so nobody answering it is not a finding); nobody else may claim it.
cat >"$tmp/l2watch.yaml" <<EOF
inventory:
  source: static
  nodes:
    - {name: node-a, macs: ['$mac_node'], ips: [10.79.0.11]}
  services:
    - name: web/nginx
      ips: [$vip]
      announcer: node-a
probe:
  interval: 2s
  reply_window: 500ms
EOF

# The state directory stands for the DaemonSet's hostPath: the only place it writes.
mkdir "$tmp/state"
# The DaemonSet's securityContext, and the flags this machine's podman needs (FACTS.md).
run_flags=(--pull never --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
  --user 0 --security-opt no-new-privileges --read-only --cap-drop ALL
  --network "ns:/run/netns/$ns_node" -v "$tmp/l2watch.yaml:/etc/l2watch/config.yaml:ro"
  -v "$tmp/state:/var/lib/l2watch")
daemon_args=(run --config /etc/l2watch/config.yaml --state /var/lib/l2watch/state.json --node-name node-a
  --interface eth0)

# GET on the node's loopback (the container shares the node's network namespace, as hostNetwork does).
get() {
  ip netns exec "$ns_node" python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:9787" + sys.argv[1], timeout=2)
    sys.stdout.write(r.read().decode())
except (urllib.error.URLError, OSError) as e:
    sys.exit(f"GET {sys.argv[1]}: {e}")
' "$1"
}
# The sum of the samples of a metric whose labels include every label="value" given; empty if none.
metric() { # metrics-text, name, label="value"...
  local text=$1 name=$2
  shift 2
  local lines
  lines=$(grep -E "^$name(\{| )" <<<"$text" || true)
  for l in "$@"; do lines=$(grep -F "$l" <<<"$lines" || true); done
  if [ -n "$lines" ]; then awk '{ s += $NF } END { print s }' <<<"$lines"; fi
}
# Into a variable before grep -q: with pipefail, a grep that stops early fails the pipe (SIGPIPE).
logs() { podman logs "$1" 2>&1; }
# Polls `$@` every 100 ms for up to $1 seconds.
wait_for() { # seconds, command...
  local until=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.1
  done
}

podman run -d --name "$name" "${run_flags[@]}" --cap-add NET_RAW "$image" "${daemon_args[@]}" >/dev/null
ready() { get /readyz >/dev/null 2>&1; }
running() { [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ]; }
if ! wait_for 10 ready; then
  running || fail "l2watch exited: $(logs "$name")"
  fail "/readyz did not answer 200 within 10 s: $(logs "$name")"
fi
# What the kernel gives PID 1: UID 0, only CAP_NET_RAW (bit 13) effective and bounding, no_new_privs.
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
status_of() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
[ "$(status_of Uid)" = 0 ] || fail "runs as UID $(status_of Uid), expected 0"
[ "$(status_of CapEff)" = 0000000000002000 ] || fail "effective capabilities $(status_of CapEff), expected NET_RAW only"
[ "$(status_of CapBnd)" = 0000000000002000 ] || fail "bounding capabilities $(status_of CapBnd), expected NET_RAW only"
[ "$(status_of NoNewPrivs)" = 1 ] || fail "no_new_privs is not set"
echo "== l2watch ready (container $name: UID 0, CapEff NET_RAW only, no_new_privs, read-only root)"

m=$(get /metrics)
[ "$(metric "$m" l2watch_capture_up 'interface="eth0"')" = 1 ] || fail "capture not up on eth0:
$m"
[ -n "$(metric "$m" l2watch_build_info)" ] || fail "no l2watch_build_info on /metrics"
frames_before=$(metric "$m" l2watch_frames_total)
frames_before=${frames_before:-0}

# The foreign device takes the Service IP: its kernel answers the probes, and it announces it.
ip -n "$ns_foreign" addr add "$vip/32" dev eth0
ip netns exec "$ns_foreign" arping -q -U -c 2 -w 2 -I eth0 "$vip" || true
found() {
  m=$(get /metrics) || return 1
  [ "$(metric "$m" l2watch_conflict_active 'kind="foreign_mac"' "ip=\"$vip\"" "mac=\"$mac_foreign\"")" = 1 ]
}
# The gratuitous ARP finds it at once; a probe round would within one interval (2 s + 10%).
wait_for 5 found || fail "no l2watch_conflict_active{kind=\"foreign_mac\"} 1 within 5 s:
$m
$(logs "$name")"
frames_after=$(metric "$m" l2watch_frames_total)
awk -v a="${frames_after:-0}" -v b="$frames_before" 'BEGIN { exit !(a > b) }' ||
  fail "l2watch_frames_total did not grow ($frames_before -> ${frames_after:-none})"
echo "== foreign_mac for $vip ($mac_foreign) on /metrics; frames $frames_before -> $frames_after"
grep -q foreign_mac <<<"$(logs "$name")" || fail "no foreign_mac in the log: $(logs "$name")"
# The DaemonSet's memory limit is 128Mi: the musl build (its own allocator) must stay well inside it.
hwm=$(status_of VmHWM)
[ "${hwm:-999999}" -lt 131072 ] || fail "peak RSS ${hwm:-unknown} kB, over the DaemonSet's 128Mi limit"
echo "== peak RSS (VmHWM) $hwm kB, RSS $(status_of VmRSS) kB"

t0=$(date +%s%N)
podman stop -t 10 "$name" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
status=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$status" = 0 ] || fail "exit status $status after SIGTERM (137 means it was killed): $(logs "$name")"
[ "$ms" -le 2000 ] || fail "podman stop took $ms ms (over 2 s)"
grep -q SIGTERM <<<"$(logs "$name")" || fail "the log does not show SIGTERM: $(logs "$name")"
[ -s "$tmp/state/state.json" ] || fail "no state file written on SIGTERM: $(logs "$name")"
echo "== podman stop (SIGTERM): exit status 0 after $ms ms, state file written"

# The negative: NET_RAW not granted. It must refuse to start, and say why.
podman run -d --name "$name-nocap" "${run_flags[@]}" "$image" "${daemon_args[@]}" >/dev/null
status=$(timeout 10 podman wait "$name-nocap") || fail "still running after 10 s without NET_RAW"
[ "$status" != 0 ] || fail "exit status 0 without NET_RAW: $(logs "$name-nocap")"
grep -q CAP_NET_RAW <<<"$(logs "$name-nocap")" || fail "no CAP_NET_RAW in the log: $(logs "$name-nocap")"
echo "== without NET_RAW: exit status $status, log: $(grep -m1 CAP_NET_RAW <<<"$(logs "$name-nocap")")"
# The arm64 image cannot run here, but its binary can under qemu-user: it must start, the right version.
skopeo copy --quiet --override-os linux --override-arch arm64 "oci-archive:$archive" "dir:$tmp/arm64"
layer=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert len(m["layers"]) == 1, m["layers"]
print(m["layers"][0]["digest"].split(":")[1])
' "$tmp/arm64/manifest.json")
mkdir "$tmp/arm64/root"
tar -xzf "$tmp/arm64/$layer" -C "$tmp/arm64/root"
grep -q "ARM aarch64" <<<"$(file -b "$tmp/arm64/root/l2watch")" || fail "the arm64 image holds $(file -b "$tmp/arm64/root/l2watch")"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
got=$(qemu-aarch64-static "$tmp/arm64/root/l2watch" --version) || fail "the arm64 binary does not run under qemu"
[ "$got" = "l2watch $version" ] || fail "the arm64 binary says '$got', expected 'l2watch $version'"
echo "== arm64 image: /l2watch runs under qemu-user: $got"
echo "image/test.sh: PASS ($((SECONDS - start)) s)"
