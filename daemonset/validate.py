#!/usr/bin/env python3
"""Validates rendered manifests (multi-document YAML, as `kubectl kustomize` prints them).

Usage: validate.py K8S_VERSION CRD_DIR FILE...

Every built-in object is checked with kubernetes-validate against the strict schema of Kubernetes
K8S_VERSION (unknown fields are errors, as `kubectl apply --validate=strict` makes them). Every object of
a CustomResourceDefinition found in CRD_DIR (the Prometheus Operator's PodMonitor, ServiceMonitor,
PrometheusRule) is checked against that CRD's openAPIV3Schema, made strict the same way: where a schema
lists properties and neither allows others nor preserves unknown fields, another field is an error.
An object of any other kind is an error too: nothing goes unchecked. Exits 1 on any error.
Needs PyYAML, jsonschema and kubernetes-validate (pinned in daemonset/check.sh).
"""

import copy
import glob
import os
import sys

import jsonschema
import kubernetes_validate
import yaml


def strict(schema):
    """The schema with unknown fields forbidden wherever the CRD does not allow them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # `metadata` is the API server's, not the CRD's: the CRD schema says only `type: object`.
    return schema


def crd_schemas(crd_dir):
    """(apiVersion, kind) -> validator, for every served version of every CRD in crd_dir."""
    schemas = {}
    paths = sorted(glob.glob(os.path.join(crd_dir, "*.yaml")))
    if not paths:
        sys.exit(f"validate.py: no CRDs in {crd_dir}")
    for path in paths:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if not version.get("served"):
                        continue
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
                    schemas[(f"{group}/{version['name']}", kind)] = cls(schema)
    return schemas


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    version, crd_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    schemas = crd_schemas(crd_dir)
    errors = 0
    checked = 0
    for path in files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{path}: no objects", file=sys.stderr)
            errors += 1
        for doc in docs:
            meta = doc.get("metadata", {})
            name = f"{path}: {doc.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}"
            key = (doc.get("apiVersion"), doc.get("kind"))
            checked += 1
            if key in schemas:
                problems = sorted(schemas[key].iter_errors(doc), key=lambda e: list(e.absolute_path))
                for e in problems:
                    where = "/".join(str(p) for p in e.absolute_path) or "(top)"
                    print(f"{name}: {where}: {e.message}", file=sys.stderr)
                errors += len(problems)
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                print(
                    f"{name}: {key[0]} {key[1]} is neither built into Kubernetes {version} nor a CRD in {crd_dir}",
                    file=sys.stderr,
                )
                errors += 1
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in e.path) or "(top)"
                print(f"{name}: {where}: {e.message}", file=sys.stderr)
                errors += 1
    if errors:
        print(f"validate.py: {errors} error(s) in {checked} objects", file=sys.stderr)
        sys.exit(1)
    print(f"validate.py: {checked} objects valid (Kubernetes {version}; CRDs from {crd_dir})")


if __name__ == "__main__":
    main()
