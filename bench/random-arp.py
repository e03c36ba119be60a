"""Sends N gratuitous ARPs from random MACs for random addresses of 10.0.0.0/16 out of DEV.

    python3 bench/random-arp.py DEV N

Needs CAP_NET_RAW; run it inside a network namespace of your own. The sequence is the same every run
(seed 7). Used by tests/daemon.rs (the flood test) and daemonset/measure.sh.
"""
import random
import socket
import struct
import sys

dev, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
for _ in range(n):
    mac = bytes([0x02]) + rnd.getrandbits(40).to_bytes(5, "big")
    ip = bytes([10, 0]) + rnd.getrandbits(16).to_bytes(2, "big")
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + bytes(6) + ip
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
