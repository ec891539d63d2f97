#!/usr/bin/env python3
"""Writes adversarial captures for memory tests (standard library only).

usage: benches/adversarial.py OUT_DIR

  million-syns.pcap   1 000 000 SYNs from distinct clients to one server (a SYN flood /
                      a scan): the flow table must stay at its cap, memory flat.

Measure with: /usr/bin/time -v target/release/specter exchanges --stats OUT_DIR/million-syns.pcap
(peak RSS is "Maximum resident set size").
"""
import os
import random
import struct
import sys


def million_syns(path, count=1_000_000):
    random.seed(1)
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            src = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
            sport = 1024 + (i % 60000)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, src, bytes([10, 255, 0, 1]))
            tcp = struct.pack("!HHIIBBHHH", sport, 80, random.getrandbits(32), 0, 0x50, 0x02, 65535, 0, 0)
            frame = b"\x00" * 12 + b"\x08\x00" + ip + tcp
            out.write(struct.pack("<IIII", 1_700_000_000 + i // 10_000, (i % 10_000) * 100, len(frame), len(frame)))
            out.write(frame)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    million_syns(os.path.join(sys.argv[1], "million-syns.pcap"))


if __name__ == "__main__":
    main()
