#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/ (not committed).

The seeds come from ../shared/testdata (captures, MetalLB objects), the example config and the configs
the tests use. `cargo fuzz cmin` then keeps, of the committed corpus and the seeds, the inputs that
cover an edge nothing smaller covers (edge coverage only, `-use_counters=0`, keeps the corpus small):

    python3 fuzz/seed.py
    for t in decode capture_file config kube_objects; do
        cp fuzz/seeds/$t/* fuzz/corpus/$t/
        RUSTC_BOOTSTRAP=1 cargo fuzz cmin -a $t -- -use_counters=0 -max_len=6144
    done
"""

import hashlib
import json
import re
import struct
import sys
from pathlib import Path

import yaml

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
TESTDATA = REPO.parent / "shared" / "testdata"
OUT = FUZZ / "seeds"

# LINKTYPE_ number -> the decode target's link type index (see fuzz_targets/decode.rs).
LINKS = {1: 0, 113: 1, 276: 2, 242: 3}
# Largest capture seed: longer files only repeat records and slow every execution down.
MAX_CAPTURE_SEED = 4096


def write(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_records(data):
    """(link type, [(record bytes, frame bytes)]) of a classic pcap file, and its header."""
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    records, at = [], 24
    while at + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[at + 8 : at + 12])[0]
        end = at + 16 + incl
        if end > len(data):
            break
        records.append((data[at:end], data[at + 16 : end]))
        at = end
    return data[:24], link, records


def pcapng_blocks(data):
    """[(block type, block bytes)] of a little- or big-endian pcapng file."""
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    blocks, at = [], 0
    while at + 12 <= len(data):
        btype, blen = struct.unpack(endian + "II", data[at : at + 8])
        if blen < 12 or at + blen > len(data):
            break
        blocks.append((btype, data[at : at + blen], endian))
        at += blen
    return blocks


def capture_frames(path):
    """[(link type, frame)] of a capture file."""
    data = path.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        links, frames = [], []
        for btype, block, endian in pcapng_blocks(data):
            if btype == 0x0A0D0D0A:
                links = []
            elif btype == 1:
                links.append(struct.unpack(endian + "H", block[8:10])[0])
            elif btype == 6:
                iface, _, _, caplen = struct.unpack(endian + "IIII", block[8:24])
                if iface < len(links):
                    frames.append((links[iface], block[28 : 28 + caplen]))
        return frames
    _, link, records = pcap_records(data)
    return [(link, frame) for _, frame in records]


def truncated_capture(path):
    """The capture cut after as many whole records as fit in MAX_CAPTURE_SEED bytes."""
    data = path.read_bytes()
    if len(data) <= MAX_CAPTURE_SEED:
        return data
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        out = b""
        for _, block, _ in pcapng_blocks(data):
            if len(out) + len(block) > MAX_CAPTURE_SEED:
                break
            out += block
        return out
    header, _, records = pcap_records(data)
    out = header
    for record, _ in records:
        if len(out) + len(record) > MAX_CAPTURE_SEED:
            break
        out += record
    return out


def decode_seeds():
    for path in sorted((TESTDATA / "pcap").glob("*.pcap*")):
        frames = [(LINKS[l], f) for l, f in capture_frames(path) if l in LINKS]
        # One frame per seed: settings 0 (empty inventory), header = link type, length 0 = the rest.
        for link, frame in frames:
            write("decode", bytes([0, link, 0]) + frame)
        # Runs of frames through the example cluster, with clock steps and probe rounds between them.
        for start in range(0, len(frames), 16):
            seed = bytearray([1])
            for i, (link, frame) in enumerate(frames[start : start + 16]):
                if not 0 < len(frame) < 255:
                    continue
                seed += bytes([link | ((i % 8) << 4) | (0x80 if i % 5 == 4 else 0), len(frame)]) + frame
            write("decode", bytes(seed))


def capture_file_seeds():
    for path in sorted((TESTDATA / "pcap").glob("*.pcap*")):
        write("capture_file", truncated_capture(path))


def rust_strings(text):
    """The YAML-looking string literals of Rust source: raw strings and escaped ones."""
    out = re.findall(r'r#"(.*?)"#', text, re.S)
    for lit in re.findall(r'"((?:[^"\\\n]|\\.)*)"', text):
        s = lit.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out.append(s)
    return [s for s in out if "\n" in s and ":" in s]


def config_seeds():
    example = (REPO / "examples" / "l2watch.yaml").read_bytes()
    write("config", example)
    registry = b"web/nginx: 192.168.1.240\nweb/api: fd00:1::1\n"
    write("config", example + b"\0" + registry)
    for source in [REPO / "src" / "config.rs", *sorted((REPO / "tests").glob("*.rs"))]:
        for s in rust_strings(source.read_text()):
            write("config", s.encode())
            if "inventory:" in s:
                write("config", s.encode() + b"\0" + registry)


# The kube_objects target's command byte per kind (apply).
KINDS = {
    "Node": b"0",
    "Service": b"1",
    "IPAddressPool": b"2",
    "L2Advertisement": b"3",
    "ServiceL2Status": b"4",
    "Event": b"5",
    "Lease": b"6",
}

NODES = [
    {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"worker-{i}", "labels": {"kubernetes.io/hostname": f"worker-{i}"}},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": f"192.168.1.1{i}"},
                {"type": "Hostname", "address": f"worker-{i}"},
            ],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    for i in (1, 2, 3)
]

LEASES = [
    {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": f"l2watch-worker-{i}",
            "namespace": "l2watch",
            "labels": {"app.kubernetes.io/name": "l2watch"},
            "annotations": {
                "l2watch.io/macs": f"52:54:00:6b:3c:0{i}",
                "l2watch.io/interfaces": "eth0",
                "l2watch.io/ips": f"192.168.1.1{i},fd00::{i}",
            },
        },
        "spec": {
            "holderIdentity": f"worker-{i}",
            "leaseDurationSeconds": 15,
            "renewTime": "2025-03-10T11:59:55.000000Z",
        },
    }
    for i in (1, 2)
]


def rfc3339(value):
    """YAML's unquoted timestamps, back as the API writes them."""
    return value.isoformat().replace("+00:00", "Z")


def command(obj):
    kind = obj.get("kind")
    if kind == "ConfigMap":
        name = obj.get("metadata", {}).get("name")
        return b"7" if name == "kube-proxy" else b"8"
    return KINDS.get(kind)


# Fields l2watch never reads: dropped from the seeds, so a whole cluster fits in a few KiB (the size
# libFuzzer mutates quickly) and mutations land on what matters.
NOISE = {
    "metadata": {"managedFields", "ownerReferences", "uid", "resourceVersion", "creationTimestamp", "generation"},
    "spec": {"ports", "clusterIP", "clusterIPs", "selector", "sessionAffinity", "ipFamilies", "ipFamilyPolicy",
             "internalTrafficPolicy", "allocateLoadBalancerNodePorts"},
    "involvedObject": {"uid", "resourceVersion", "apiVersion"},
}


def quiet(obj):
    """`obj` without NOISE, and without the status of objects whose status l2watch does not read."""
    out = {}
    for key, value in obj.items():
        if key == "status" and obj.get("kind") in ("IPAddressPool", "L2Advertisement"):
            continue
        if isinstance(value, dict) and key in NOISE:
            value = {k: v for k, v in value.items() if k not in NOISE[key]}
        out[key] = value
    return out


def kube_objects_seeds():
    objects = {f"node-{i}": n for i, n in enumerate(NODES)} | {f"lease-{i}": l for i, l in enumerate(LEASES)}
    for path in sorted((TESTDATA / "metallb").glob("*.yaml")):
        docs = [quiet(d) for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        for i, doc in enumerate(docs):
            objects[f"{path.name.split('-')[0]}-{i}"] = doc
    lines = {}
    for key, obj in objects.items():
        cmd = command(obj)
        if cmd is None:
            continue
        lines[key] = cmd + json.dumps(obj, separators=(",", ":"), default=rfc3339).encode()
        write("kube_objects", lines[key])
    base = [lines[k] for k in lines if k.startswith(("node-", "lease-"))]
    # Two whole clusters, each within 4 KiB: MetalLB 0.14.6+ with IPVS kube-proxy, and MetalLB <= 0.12
    # (legacy ConfigMap, old Event message) with iptables, the 0.14.4 status layout and minimal objects.
    new = base + [lines[k] for k in ("03-0", "04-0", "05-0", "05c-0", "01-0", "06-0", "11-0")]
    old = base + [lines[k] for k in ("09-0", "05b-0", "02-0", "06b-0", "11c-0", "04b-0", "03b-0")]
    for cluster in (new, old):
        write("kube_objects", b"\n".join(cluster))
    # Then the announcer's status is deleted (P-X delete): the Event is all that is left.
    deleted = [bytes([l[0] + 0x20]) + l[1:] for l in new if l[:1] == b"4"]
    write("kube_objects", b"\n".join(new + deleted))


def main():
    if not TESTDATA.is_dir():
        sys.exit(f"{TESTDATA} is missing")
    decode_seeds()
    capture_file_seeds()
    config_seeds()
    kube_objects_seeds()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
