#!/usr/bin/env bash
# Checks dashboards/*.json against Grafana's published dashboard schema, the npm package @grafana/schema,
# compiled with TypeScript (tsc --noEmit), and then checks what types cannot say (lint.mjs): data sources
# only through the ${datasource} variable, unique panel ids, a gridPos on every panel and no overlaps, an
# expr in every target, only metrics that l2watch exports, only defined variables.
#
# Usage: dashboards/check.sh [DASHBOARD.json...]   (default: every dashboards/*.json)
#        dashboards/check.sh --self-test            breaks dashboards/l2watch.json in 22 ways (wrong field
#                                                   types, unknown fields, missing ones, hard-coded UIDs...)
#                                                   and fails unless the check rejects every one
#
# Needs node and npm (Debian's nodejs and npm), and the npm registry for `npm ci` (versions pinned in
# check/package-lock.json). Checks every dashboard given; exits non-zero if any fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "dashboards/check.sh: $tool not found: install Debian's nodejs and npm (apt-get install -y nodejs npm)" >&2
    exit 2
  fi
done

cd "$here/check"
npm ci --prefer-offline --no-audit --no-fund --loglevel=error

# The wrapper lives under check/ so that it resolves check/node_modules; removed however we exit.
gen="$(mktemp -d "$here/check/.gen.XXXXXX")"
trap 'rm -rf "$gen"' EXIT

tsconfig() { # $1: directory, rest: files to compile
  local dir="$1"
  shift
  local files
  files="$(printf '"%s",' "$@")"
  cat > "$dir/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "types": []
  },
  "files": [${files%,}]
}
JSON
}

if [ "${1:-}" = "--self-test" ]; then
  # One tsc run over every broken copy: each must have an error of its own, the intact one none.
  node self-test.mjs "$here/l2watch.json" "$gen" > "$gen/cases"
  mapfile -t ts_files < <(cd "$gen" && ls ./*.ts)
  tsconfig "$gen" "${ts_files[@]}"
  npx --no-install tsc -p "$gen/tsconfig.json" --pretty false > "$gen/tsc.out" || true
  # A syntax error in one file hides the type errors of all: then nothing below would be meaningful.
  # (TS1xxx are parser errors, except TS1360, "does not satisfy the expected type".)
  if grep 'error TS1[0-9][0-9][0-9]:' "$gen/tsc.out" | grep -qv 'error TS1360:'; then
    echo "self-test: syntax errors in the generated wrappers:" >&2
    cat "$gen/tsc.out" >&2
    exit 1
  fi
  failed=0
  if grep -q '/intact\.ts(' "$gen/tsc.out" || ! node lint.mjs "$gen/intact.json" "$root/src/export/metrics.rs" > /dev/null; then
    echo "self-test: the intact dashboard fails the check:" >&2
    cat "$gen/tsc.out" >&2
    failed=1
  fi
  while read -r name checker; do
    if [ "$checker" = none ]; then
      continue
    elif [ "$checker" = tsc ]; then
      first="$(grep -m1 "/$name\.ts(" "$gen/tsc.out" | sed 's/^[^:]*: //' | cut -c1-110 || true)"
    else
      first="$(node lint.mjs "$gen/$name.json" "$root/src/export/metrics.rs" 2>&1 >/dev/null | sed -n 2p | sed 's/^ *//' | cut -c1-110 || true)"
    fi
    if [ -n "$first" ]; then
      printf 'rejected %-40s %-4s %s\n' "$name" "$checker" "$first"
    else
      printf 'ACCEPTED %-40s %-4s (the check did not catch it)\n' "$name" "$checker" >&2
      failed=1
    fi
  done < "$gen/cases"
  [ "$failed" -eq 0 ] && echo "dashboards/check.sh --self-test: every broken copy rejected"
  exit "$failed"
fi

status=0
shopt -s nullglob
dashboards=("$here"/*.json)
if [ $# -gt 0 ]; then
  dashboards=()
  for arg in "$@"; do dashboards+=("$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"); done
fi
if [ ${#dashboards[@]} -eq 0 ]; then
  echo "dashboards/check.sh: no dashboards/*.json to check" >&2
  exit 1
fi
for dashboard in "${dashboards[@]}"; do
  name="$(basename "$dashboard" .json)"
  # `satisfies` on the literal keeps "stat" a literal and applies excess property checks, which an
  # `import ... from './x.json'` would not; the second assignment checks it against Grafana's own type.
  node -e '
    const fs = require("fs");
    const [src, out] = process.argv.slice(1);
    const json = JSON.stringify(JSON.parse(fs.readFileSync(src, "utf8")), null, 2);
    fs.writeFileSync(out, [
      "import type { GrafanaDashboard, L2watchDashboard } from \"../dashboard-types\";",
      "export const dashboard = " + json + " satisfies L2watchDashboard;",
      "export const asGrafana: GrafanaDashboard = dashboard;",
      "",
    ].join("\n"));
  ' "$dashboard" "$gen/$name.ts"
  tsconfig "$gen" "$name.ts"
  if ! npx --no-install tsc -p "$gen/tsconfig.json" --pretty false; then
    echo "dashboards/check.sh: $dashboard does not match Grafana's dashboard schema (@grafana/schema; errors above, line numbers are in the generated $name.ts, which is the JSON re-indented)" >&2
    status=1
  fi
  if ! node lint.mjs "$dashboard" "$root/src/export/metrics.rs"; then
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "dashboards/check.sh: OK"
exit "$status"
