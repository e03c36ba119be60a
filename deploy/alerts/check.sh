#!/usr/bin/env bash
# Checks the alert rules: `promtool check rules` (syntax, PromQL, templates) and `promtool test rules`
# (the unit tests in l2watch.rules.test.yml). Exits non-zero when either fails or promtool is missing.
# promtool comes with Prometheus (Debian: apt-get install prometheus); PROMTOOL overrides which one.
set -euo pipefail
cd "$(dirname "$0")"

promtool=${PROMTOOL:-promtool}
if ! command -v "$promtool" >/dev/null 2>&1; then
  echo "check.sh: $promtool not found: install Prometheus' promtool (Debian: apt-get install prometheus)" >&2
  exit 127
fi

"$promtool" check rules l2watch.rules.yml
"$promtool" test rules l2watch.rules.test.yml
