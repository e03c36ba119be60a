#!/usr/bin/env bash
# Builds the l2watch container image for linux/amd64 and linux/arm64 and writes both, as one multi-arch
# OCI index, into one archive (default target/oci/l2watch.oci.tar; never committed):
#
#   image/build.sh [OUT.tar [IMAGE]]        IMAGE defaults to ghcr.io/l2watch/l2watch:<Cargo version>
#
# Steps: static musl binaries for x86_64 and aarch64 (cargo profile `image`, see Cargo.toml), a staging
# context (the binaries and Debian's IEEE registries), `buildah bud` per platform from image/Dockerfile
# into one manifest list, `buildah manifest push --all` into the archive; then it checks that both
# binaries are static ELF files of the right machine and that the archive's index lists both platforms,
# and prints each platform's compressed size and binary size.
#
# Needs (Debian): buildah skopeo ieee-data file gcc gcc-aarch64-linux-gnu python3, plus cargo and rustup
# (the musl targets are added with `rustup target add` when missing). Runs as root. Buildah's storage
# (vfs, chroot isolation) lives in target/oci/buildah and is rebuilt each run; buildah still writes its
# blob cache under /var/lib/containers/cache, as any first call does.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
out=${1:-target/oci/l2watch.oci.tar}
image=${2:-ghcr.io/l2watch/l2watch:$version}
case $out in /*) ;; *) out=$root/$out ;; esac

fail() {
  echo "image/build.sh: $*" >&2
  exit 1
}

missing=()
for tool in cargo rustup buildah skopeo file gcc aarch64-linux-gnu-gcc aarch64-linux-gnu-ar python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  fail "missing ${missing[*]}: apt-get install -y buildah skopeo file gcc gcc-aarch64-linux-gnu python3" \
    "(and rustup from https://rustup.rs)"
fi
ieee=/usr/share/ieee-data
for f in oui mam oui36 iab; do
  [ -r "$ieee/$f.csv" ] || fail "missing $ieee/$f.csv: apt-get install -y ieee-data"
done
[ "$(id -u)" = 0 ] || fail "run it as root (buildah with chroot isolation and vfs storage)"

# name:docker-arch:file(1) machine
platforms=("x86_64-unknown-linux-musl:amd64:x86-64" "aarch64-unknown-linux-musl:arm64:ARM aarch64")
targets=()
for p in "${platforms[@]}"; do targets+=("${p%%:*}"); done

installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

start=$SECONDS
# ring (rustls) compiles C and assembly: cc-rs would look for musl-gcc / aarch64-linux-musl-gcc, which
# Debian does not have. The musl targets bring their own libc and start files, so the gnu cross gcc
# compiles ring's freestanding code and links (the C compiler is needed for ring anyway, so it links
# too rather than rust-lld, one tool less to reason about).
export CC_x86_64_unknown_linux_musl=gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
# Both targets in one invocation: build scripts and proc macros are compiled once for the host.
target_args=()
for t in "${targets[@]}"; do target_args+=(--target "$t"); done
echo "== cargo build --profile image ${target_args[*]}"
cargo build --locked --profile image "${target_args[@]}"
echo "== binaries built in $((SECONDS - start)) s"

work=$root/target/oci
ctx=$work/context
rm -rf "$ctx"
mkdir -p "$ctx/ieee-data" "$(dirname "$out")"
cp "$ieee"/{oui,mam,oui36,iab}.csv "$ctx/ieee-data/"
for p in "${platforms[@]}"; do
  IFS=: read -r triple arch machine <<<"$p"
  bin=${CARGO_TARGET_DIR:-target}/$triple/image/l2watch
  desc=$(file -b "$bin")
  # musl binaries are static-pie; either form is one file that needs nothing from the image.
  case $desc in
    *"$machine"*static*) ;;
    *) fail "$bin is not a static $machine executable: $desc" ;;
  esac
  echo "$arch: $desc"
  mkdir -p "$ctx/$arch"
  cp "$bin" "$ctx/$arch/l2watch"
done

# Buildah's own storage and config, not the machine's: a run leaves nothing in /var/lib/containers/storage.
store=$work/buildah
rm -rf "$store"
mkdir -p "$store"
cat >"$store/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$store/root"
runroot = "$store/run"
EOF
export CONTAINERS_STORAGE_CONF=$store/storage.conf
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
export TMPDIR=$store

list=l2watch-manifest
start=$SECONDS
for p in "${platforms[@]}"; do
  IFS=: read -r _ arch _ <<<"$p"
  echo "== buildah bud linux/$arch"
  # --timestamp 0: layer and config dates fixed, so the same sources give the same digests (without
  # it two builds of one commit differ, and an operator cannot tell a rebuild from a change).
  buildah bud --quiet --isolation chroot --timestamp 0 --platform "linux/$arch" --build-arg "TARGETARCH=$arch" \
    --build-arg "VERSION=$version" --manifest "$list" -f image/Dockerfile "$ctx"
done
rm -f "$out"
buildah manifest push --quiet --all "$list" "oci-archive:$out:$image"
echo "== images built and pushed in $((SECONDS - start)) s"

# The index must name both platforms; then each platform's manifest gives its compressed layer sizes.
skopeo inspect --raw "oci-archive:$out" >"$work/index.json"
python3 - "$out" "$work/index.json" "$ctx" <<'EOF'
import json, os, sys, tarfile

archive, index_path, ctx = sys.argv[1:]
index = json.load(open(index_path))
platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m for m in index["manifests"]}
want = {"linux/amd64", "linux/arm64"}
if set(platforms) != want:
    sys.exit(f"image/build.sh: the index lists {sorted(platforms)}, expected {sorted(want)}")
with tarfile.open(archive) as tar:
    def blob(digest):
        return tar.extractfile("blobs/" + digest.replace(":", "/")).read()
    for name, desc in sorted(platforms.items()):
        manifest = json.loads(blob(desc["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        arch = name.split("/")[1]
        if config["architecture"] != arch or config["config"].get("Entrypoint") != ["/l2watch"]:
            sys.exit(f"image/build.sh: {name}: unexpected config {config['architecture']} {config['config']}")
        layers = sum(layer["size"] for layer in manifest["layers"])
        binary = os.path.getsize(os.path.join(ctx, arch, "l2watch"))
        print(f"{name}: {layers / 1e6:.2f} MB compressed ({len(manifest['layers'])} layers), "
              f"binary {binary / 1e6:.2f} MB, {desc['digest']}")
EOF
echo "== $out ($(du -h "$out" | cut -f1)): $image for linux/amd64 and linux/arm64"
