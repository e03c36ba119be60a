#!/usr/bin/env bash
# Checks dashboards/*.json against Grafana's published dashboard schema, the npm package @grafana/schema,
# compiled with TypeScript (tsc --noEmit), and then checks what types cannot say (lint.mjs): data sources
# only through the ${datasource} variable, unique panel ids, a gridPos on every panel and no overlaps, an
# expr in every target, only metrics that l2watch exports, only defined variables.
#
# Usage: dashboards/check.sh [DASHBOARD.json...]   (default: every dashboards/*.json)
#
# Needs node and npm (Debian's nodejs and npm), and the npm registry for `npm ci` (versions pinned in
# check/package-lock.json). Exits non-zero on the first failing dashboard.
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
npm ci --no-audit --no-fund --loglevel=error

# The wrapper lives under check/ so that it resolves check/node_modules; removed however we exit.
gen="$(mktemp -d "$here/check/.gen.XXXXXX")"
trap 'rm -rf "$gen"' EXIT

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
  cat > "$gen/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "exactOptionalPropertyTypes": false,
    "types": []
  },
  "files": ["$name.ts"]
}
JSON
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
