#!/usr/bin/env bash
# Fuzz smoke run for CI: every target for a short while (FUZZ_SECONDS, default 45) over the committed
# corpus, with AddressSanitizer and debug assertions (overflow checks) on. A crash, hang or OOM fails
# the run; libFuzzer prints the input and cargo-fuzz the command that reproduces it.
#
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them (the only
# toolchain these machines have). libFuzzer itself is C++: it needs g++.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-45}"
targets=(decode capture_file config kube_objects)
echo "== cargo fuzz build"
cargo fuzz build -a

# New inputs go to a scratch corpus (the first directory), so the committed ones stay as they are; the
# inputs that once crashed (fuzz/regressions) run first, with the corpus.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  echo "== cargo fuzz run $t (${seconds}s)"
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  corpora=("fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && corpora+=("fuzz/regressions/$t")
  # Whole clusters as JSON need more room than libFuzzer's default 4 KiB.
  max_len=()
  [ "$t" = kube_objects ] && max_len=(-max_len=6144)
  if ! cargo fuzz run -a "$t" "$scratch/$t" "${corpora[@]}" -- "${max_len[@]}" \
    -max_total_time="$seconds" -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 80 "$log" >&2
    echo "fuzz: $t failed; the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done' "$log"
done
