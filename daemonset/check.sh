#!/usr/bin/env bash
# Checks the kustomize base and the example overlay: both render (`kubectl kustomize`); every built-in
# object validates against the strict schema of Kubernetes 1.37 and of 1.33 (the API version the binary
# is built against, k8s-openapi v1_33) with kubernetes-validate; the PodMonitor and PrometheusRule
# validate against the Prometheus Operator's CRDs in ../shared/testdata/prometheus-operator/crds
# (relative to the repository root); and base/prometheusrule.yaml is what gen-prometheusrule.sh writes
# from deploy/alerts/l2watch.rules.yml. Exits non-zero on any failure or a missing tool.
# Needs: kubectl with kustomize v5 (KUBECTL overrides which one), python3 with PyYAML and, pinned,
#   python3 -m pip install kubernetes-validate==1.37.0 jsonschema==4.26.0
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE=1.37.0
JSONSCHEMA=4.26.0
K8S_VERSIONS=(1.37.0 1.33.0)
crds=../shared/testdata/prometheus-operator/crds

fail() { echo "check.sh: $*" >&2; exit 1; }

kubectl=${KUBECTL:-kubectl}
command -v "$kubectl" >/dev/null 2>&1 ||
  { echo "check.sh: $kubectl not found: install kubectl (with kustomize v5)" >&2; exit 127; }
# kubectl before 1.27 embeds kustomize v4 or older, which renders this base differently.
kustomize=$("$kubectl" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v//p')
[ "${kustomize%%.*}" -ge 5 ] 2>/dev/null ||
  fail "$kubectl embeds kustomize ${kustomize:-(unknown)}; v5 or later is needed (kubectl 1.27+)"
command -v python3 >/dev/null 2>&1 || { echo "check.sh: python3 not found" >&2; exit 127; }
python3 - "$KUBERNETES_VALIDATE" "$JSONSCHEMA" <<'PY' || exit 127
import importlib.metadata as md, sys
want = {"kubernetes-validate": sys.argv[1], "jsonschema": sys.argv[2], "PyYAML": None}
for name, version in want.items():
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if have is None or (version and have != version):
        pins = " ".join(f"{n}=={v}" for n, v in want.items() if v)
        sys.exit(f"check.sh: python3 has {name} {have or 'missing'}, needs {version or 'any'}: "
                 f"python3 -m pip install {pins} pyyaml")
PY
[ -d "$crds" ] || fail "$crds is missing: the Prometheus Operator CRDs (shared testdata) are needed"

echo "== PrometheusRule up to date with deploy/alerts/l2watch.rules.yml"
daemonset/gen-prometheusrule.sh --check

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== kubectl kustomize daemonset, daemonset/overlays/example"
"$kubectl" kustomize daemonset >"$out/base.yaml"
"$kubectl" kustomize daemonset/overlays/example >"$out/example.yaml"

for v in "${K8S_VERSIONS[@]}"; do
  echo "== schemas: Kubernetes $v (kubernetes-validate $KUBERNETES_VALIDATE), Prometheus Operator CRDs"
  python3 daemonset/validate.py "$v" "$crds" "$out/base.yaml" "$out/example.yaml"
done
