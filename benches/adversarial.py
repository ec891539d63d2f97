#!/usr/bin/env python3
"""Writes adversarial captures for memory tests (standard library only).

usage: benches/adversarial.py OUT_DIR [--scale F] [--only NAME[,NAME...]]

Every capture is legacy pcap, Ethernet/IPv4/TCP, with correct sequence numbers so the
reassembler delivers what an attacker sent. At --scale 1 (the default) the largest file is
about 1 GB; --scale 0.01 writes the same shapes small enough for a test.

  million-syns.pcap      1 000 000 SYNs from distinct clients (a SYN flood / a scan): the
                         flow table must stay at its cap.
  half-open.pcap         1 000 000 connections that complete the handshake and send part of
                         a request head (half of them with a hole before it) and never
                         finish: the flow table and per-flow head and out-of-order buffers.
  fat-half-open.pcap     20 000 connections each holding a 48 KB partial head (under the
                         64 KiB head limit): what the flows hold together, not one by one.
  gzip-bomb.pcap         responses whose gzip, deflate, nested gzip and JSON-looking gzip
                         bodies inflate 1000-fold from under the 64 KiB body limit (and 2 GB
                         from 2 MB; brotli when the module is present), and a gzip request
                         body.
  hpack-bomb.pcap        HTTP/2 prior knowledge: a 4 KB header inserted into the dynamic
                         table and referenced 16 000 times per block, table-size update
                         floods, and a CONTINUATION flood that never ends its block.
  million-paths.pcap     1 000 000 requests and responses on keep-alive connections, every
                         path segment, query key and JSON key distinct: the template tree
                         and the per-endpoint sets of `analyze`.
  endless-chunked.pcap   a chunked response of 900 MB in 16-byte chunks that never ends, one
                         with a 10 MB chunk-size line, one announcing a 2^63 chunk.
  deep-json.pcap         JSON bodies nested 30 000 and 100 000 deep, objects with 6 000 and
                         100 000 distinct keys (new keys in every body): schema inference.
  huge-head.pcap         a 100 MB request line without CRLF, a 100 MB header line, and
                         1 000 000 pipelined requests that never get a response.
  ooo-tiny.pcap          40 connections sending 1-byte segments ahead of 1-byte holes,
                         interleaved: the out-of-order piece count, not only its bytes.
  stalled-order.pcap     an upload that never ends holds the first place in the output
                         order while 10 000 exchanges with 60 KB bodies finish after it:
                         exchanges held back for ordering, with their bodies.

Measure with: /usr/bin/time -v target/release/specter analyze --db /tmp/x.db --stats FILE
(peak RSS is "Maximum resident set size").
"""
import gzip
import os
import random
import struct
import sys
import zlib

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
# The largest TCP payload one IPv4 packet carries (65535 - 20 - 20), rounded down.
BIG_SEGMENT = 65000
MSS = 1460
ETH = b"\x00" * 12 + b"\x08\x00"


class Pcap:
    """A legacy pcap writer with one packet clock (10 us per packet)."""

    def __init__(self, path):
        self.out = open(path, "wb", buffering=1 << 20)
        self.out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.us = 0

    def tcp(self, src, dst, sport, dport, seq, ack, flags, payload=b""):
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst
        )
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
        n = 14 + 40 + len(payload)
        self.us += 10
        self.out.write(struct.pack("<IIII", 1_700_000_000 + self.us // 1_000_000, self.us % 1_000_000, n, n))
        self.out.write(ETH)
        self.out.write(ip)
        self.out.write(tcp)
        self.out.write(payload)

    def close(self):
        self.out.close()


def ip4(n):
    return bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])


SERVER = bytes([10, 255, 0, 1])


def coalesce(chunks, send):
    """Hands `send` the concatenation of `chunks` in BIG_SEGMENT pieces."""
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= BIG_SEGMENT:
            send(bytes(buf[:BIG_SEGMENT]))
            del buf[:BIG_SEGMENT]
    send(bytes(buf))


class Conn:
    """One TCP connection: tracks both sequence numbers so every byte is delivered."""

    def __init__(self, pcap, n, port=80, handshake=True):
        self.p = pcap
        self.c = ip4(n)
        self.cport = 1024 + n % 60000
        self.port = port
        self.cseq = (n * 7919) & 0xFFFFFFFF
        self.sseq = (n * 104729) & 0xFFFFFFFF
        if handshake:
            pcap.tcp(self.c, SERVER, self.cport, port, self.cseq, 0, SYN)
            pcap.tcp(SERVER, self.c, port, self.cport, self.sseq, self.cseq + 1, SYN | ACK)
            self.cseq += 1
            self.sseq += 1

    def client(self, data, seg=BIG_SEGMENT):
        for i in range(0, len(data), seg):
            piece = data[i : i + seg]
            self.p.tcp(self.c, SERVER, self.cport, self.port, self.cseq, self.sseq, PSH | ACK, piece)
            self.cseq += len(piece)

    def server(self, data, seg=BIG_SEGMENT):
        for i in range(0, len(data), seg):
            piece = data[i : i + seg]
            self.p.tcp(SERVER, self.c, self.port, self.cport, self.sseq, self.cseq, PSH | ACK, piece)
            self.sseq += len(piece)

    def client_stream(self, chunks):
        """Sends an iterator of byte strings, coalesced into big segments."""
        coalesce(chunks, self.client)

    def server_stream(self, chunks):
        coalesce(chunks, self.server)

    def fin(self):
        self.p.tcp(self.c, SERVER, self.cport, self.port, self.cseq, self.sseq, FIN | ACK)
        self.p.tcp(SERVER, self.c, self.port, self.cport, self.sseq, self.cseq + 1, FIN | ACK)


def n_of(count, scale, least=1):
    return max(least, int(count * scale))


def million_syns(path, scale):
    random.seed(1)
    count = n_of(1_000_000, scale)
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


def half_open(path, scale):
    p = Pcap(path)
    head = b"GET /half-open HTTP/1.1\r\nHost: victim.example\r\nX-Pad: " + b"p" * 200
    for i in range(n_of(1_000_000, scale)):
        c = Conn(p, i)
        if i % 2:
            # A hole of one byte, then the rest: the assembler must hold it.
            c.cseq += 1
        c.client(head)
    p.close()


def fat_half_open(path, scale):
    p = Pcap(path)
    head = b"POST /fat HTTP/1.1\r\nHost: victim.example\r\nX-Pad: " + b"f" * (48 * 1024)
    for i in range(n_of(20_000, scale, 8)):
        Conn(p, i).client(head)
    p.close()


def zeros(total, block=1 << 20):
    z = bytes(block)
    for _ in range(total // block):
        yield z


def compressed(gen, wbits, level=9):
    co = zlib.compressobj(level, zlib.DEFLATED, wbits)
    out = bytearray()
    for piece in gen:
        out += co.compress(piece)
    out += co.flush()
    return bytes(out)


def json_filler(total):
    yield b'{"items":["'
    z = b"A" * (1 << 20)
    for _ in range(total // len(z)):
        yield z
    yield b'"]}'


def response(body, headers):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def gzip_bomb(path, scale):
    # 60 MB inflate from ~60 KB, under the 64 KiB body limit: kept whole, so only
    # decoding meets the bomb. 2 GB inflate from 2 MB: cut on the wire already.
    size = n_of(60 << 20, scale, 1 << 20)
    big = n_of(2 << 30, scale, 1 << 20)
    gz = compressed(zeros(size), 31)
    raw = compressed(zeros(size), -15)
    zl = compressed(zeros(size), 15)
    nested = gzip.compress(compressed(zeros(big), 31), 9)
    js = compressed(json_filler(size), 31)
    large = compressed(zeros(big), 31)
    bodies = [
        (b"/gzip", gz, [b"Content-Type: application/octet-stream", b"Content-Encoding: gzip"]),
        (b"/gzip-large", large, [b"Content-Type: application/octet-stream", b"Content-Encoding: gzip"]),
        (b"/deflate-raw", raw, [b"Content-Type: text/plain", b"Content-Encoding: deflate"]),
        (b"/deflate-zlib", zl, [b"Content-Type: text/plain", b"Content-Encoding: deflate"]),
        (b"/nested", nested, [b"Content-Type: text/plain", b"Content-Encoding: gzip, gzip"]),
        (b"/json", js, [b"Content-Type: application/json", b"Content-Encoding: gzip"]),
    ]
    try:
        import brotli  # not in the standard library: only when present

        bodies.append((b"/brotli", brotli.compress(bytes(size), quality=5),
                       [b"Content-Type: text/plain", b"Content-Encoding: br"]))
    except ImportError:
        pass
    p = Pcap(path)
    for i, (target, body, headers) in enumerate(bodies):
        c = Conn(p, i)
        for _ in range(4):
            c.client(b"GET /bomb" + target + b" HTTP/1.1\r\nHost: bomb.example\r\nAccept-Encoding: gzip\r\n\r\n")
            c.server(response(body, headers))
        c.fin()
    # A compressed request body, JSON-looking, sampled by inference.
    c = Conn(p, len(bodies))
    for _ in range(4):
        c.client(b"POST /bomb/upload HTTP/1.1\r\nHost: bomb.example\r\nContent-Type: application/json\r\n"
                 b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(js) + js)
        c.server(b"HTTP/1.1 204 No Content\r\n\r\n")
    c.fin()
    p.close()


# HTTP/2 framing and HPACK (RFC 7540, RFC 7541), enough to write the attacks.
def h2_frame(kind, flags, stream, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def hpack_int(value, prefix, first):
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_str(s):
    return hpack_int(len(s), 7, 0) + s


def hpack_literal_indexed(name, value):
    """Literal with incremental indexing, new name: the field enters the dynamic table."""
    return b"\x40" + hpack_str(name) + hpack_str(value)


def hpack_request(path):
    # :method GET (2), :scheme http (6), :path literal without indexing (name index 4),
    # :authority literal without indexing (name index 1).
    return b"\x82\x86" + hpack_int(4, 4, 0) + hpack_str(path) + hpack_int(1, 4, 0) + hpack_str(b"h2.example")


def hpack_bomb(path, scale):
    p = Pcap(path)
    refs = 16_000
    blocks = n_of(2_000, scale, 4)
    c = Conn(p, 1)
    c.client(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b""))
    c.server(h2_frame(4, 0, 0, b"") + h2_frame(4, 1, 0, b""))
    bomb = hpack_literal_indexed(b"x-bomb", b"b" * 4000)
    stream = 1
    for i in range(blocks):
        block = hpack_request(b"/hpack/%d" % i)
        if i == 0:
            block += bomb
        # Index 62 is the newest dynamic entry: 16 000 references to 4 KB = 64 MB decoded.
        block += bytes([0x80 | 62]) * refs
        c.client(h2_frame(1, 0x5, stream, block))
        c.server(h2_frame(1, 0x5, stream, b"\x88"))
        stream += 2
    # Table-size updates: thousands per block, and one far past SETTINGS (RFC 7541 4.2).
    for i in range(n_of(200, scale, 2)):
        updates = (hpack_int(0, 5, 0x20) + hpack_int(4096, 5, 0x20)) * 4000 + hpack_int(1 << 30, 5, 0x20)
        c.client(h2_frame(1, 0x5, stream, updates + hpack_request(b"/resize/%d" % i)))
        c.server(h2_frame(1, 0x5, stream, b"\x88"))
        stream += 2
    # A CONTINUATION flood: a block that never ends, each fragment re-inserting a field.
    c.client(h2_frame(1, 0x1, stream, hpack_request(b"/continuation")))
    frag = (hpack_literal_indexed(b"x-flood", b"c" * 1000) + bytes([0x80 | 62]) * 3000)
    fragments = n_of(50_000, scale, 10)
    c.client_stream(h2_frame(9, 0, stream, frag) for _ in range(fragments))
    p.close()


def words(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(n)).encode()


def million_paths(path, scale):
    rng = random.Random(3)
    p = Pcap(path)
    total = n_of(1_000_000, scale, 100)
    per_conn = 1000
    batch = 20
    done = 0
    conn = 0
    while done < total:
        c = Conn(p, conn)
        conn += 1
        left = min(per_conn, total - done)
        while left > 0:
            n = min(batch, left)
            reqs = bytearray()
            resps = bytearray()
            for _ in range(n):
                w = [words(rng, 8) for _ in range(4)]
                reqs += (b"GET /" + w[0] + b"/" + w[1] + b"?" + w[2] + b"=1 HTTP/1.1\r\nHost: paths.example\r\n"
                         b"Authorization: Bearer " + w[3] + b"\r\n\r\n")
                body = b'{"' + w[3] + b'":1,"' + w[2] + b'":"x"}'
                resps += (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
            c.client(bytes(reqs))
            c.server(bytes(resps))
            left -= n
            done += n
        c.fin()
    p.close()


def endless_chunked(path, scale):
    p = Pcap(path)
    c = Conn(p, 1)
    c.client(b"GET /stream HTTP/1.1\r\nHost: chunked.example\r\n\r\n")
    size = n_of(900 << 20, scale, 1 << 16)
    chunk = b"10\r\n" + b"{\"k\":1234567890}" + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    reps = size // len(chunk)
    block = chunk * 4096
    c.server_stream([head] + [block] * (reps // 4096))
    # A chunk-size line of 10 MB that never ends.
    c = Conn(p, 2)
    c.client(b"GET /size-line HTTP/1.1\r\nHost: chunked.example\r\n\r\n")
    c.server_stream([head] + [b"0" * (1 << 20)] * n_of(10, scale, 1) + [b"1"])
    # A chunk announcing 2^63 - 1 bytes, then 100 MB of it.
    c = Conn(p, 3)
    c.client(b"GET /huge-chunk HTTP/1.1\r\nHost: chunked.example\r\n\r\n")
    c.server_stream([head, b"7fffffffffffffff\r\n"] + [b"x" * (1 << 20)] * n_of(100, scale, 1))
    p.close()


def deep_json(path, scale):
    p = Pcap(path)
    c = Conn(p, 1)
    rounds = n_of(200, scale, 4)

    def exchange(target, body):
        c.client(b"POST " + target + b" HTTP/1.1\r\nHost: json.example\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
        c.server(response(body, [b"Content-Type: application/json"]))

    # Within the 64 KiB body limit, so parsed: deep arrays, deep objects.
    exchange(b"/deep/arrays", b"[" * 30_000 + b"]" * 30_000)
    exchange(b"/deep/objects", b'{"a":' * 12_000 + b"1" + b"}" * 12_000)
    # Past the limit: 100 000 deep, kept in part.
    exchange(b"/deep/huge", b"[" * 100_000 + b"]" * 100_000)
    # Wide objects, new keys in every body: the endpoint's schema must not keep them all.
    key = 0
    for _ in range(rounds):
        fields = []
        for _ in range(5_000):
            fields.append(b'"k%07d":%d' % (key, key & 7))
            key += 1
        exchange(b"/wide", b"{" + b",".join(fields) + b"}")
    # 100 000 keys in one body (past the limit, kept in part).
    exchange(b"/wide/huge", b"{" + b",".join(b'"w%06d":1' % i for i in range(100_000)) + b"}")
    c.fin()
    p.close()


def huge_head(path, scale):
    p = Pcap(path)
    size = n_of(100 << 20, scale, 1 << 20)
    block = b"a" * (1 << 20)
    c = Conn(p, 1)
    c.client_stream([b"GET /"] + [block] * (size // len(block)))
    c = Conn(p, 2)
    c.client_stream([b"GET / HTTP/1.1\r\nHost: head.example\r\nX-Long: "] + [block] * (size // len(block)))
    c = Conn(p, 3)
    req = b"GET /pipelined HTTP/1.1\r\nHost: head.example\r\n\r\n"
    c.client_stream([req * 1000] * (n_of(1_000_000, scale, 1000) // 1000))
    p.close()


def ooo_tiny(path, scale):
    p = Pcap(path)
    flows = 40
    per_flow = n_of(100_000, scale, 100)
    conns = [Conn(p, i) for i in range(flows)]
    for k in range(per_flow):
        for c in conns:
            # Byte 2k+1 arrives, byte 2k never does: one piece per byte.
            p.tcp(c.c, SERVER, c.cport, c.port, c.cseq + 2 * k + 1, c.sseq, PSH | ACK, b"x")
    p.close()


def stalled_order(path, scale):
    p = Pcap(path)
    # One upload that never ends holds the oldest place in the output order...
    stall = Conn(p, 0)
    stall.client(b"POST /upload HTTP/1.1\r\nHost: stall.example\r\nContent-Length: 1000000000000\r\n\r\n" + b"u" * 100)
    # ...while other connections finish exchanges with 60 KB bodies, each kept whole.
    body = b'{"data":"' + b"d" * (60 * 1024) + b'"}'
    for i in range(n_of(10_000, scale, 100)):
        c = Conn(p, 1 + i)
        c.client(b"GET /item HTTP/1.1\r\nHost: stall.example\r\n\r\n")
        c.server(response(body, [b"Content-Type: application/json"]))
        c.fin()
        if i % 100 == 0:
            # The upload trickles on, so it never times out.
            stall.client(b"u")
    p.close()


CAPTURES = {
    "million-syns": million_syns,
    "half-open": half_open,
    "fat-half-open": fat_half_open,
    "gzip-bomb": gzip_bomb,
    "hpack-bomb": hpack_bomb,
    "million-paths": million_paths,
    "endless-chunked": endless_chunked,
    "deep-json": deep_json,
    "huge-head": huge_head,
    "ooo-tiny": ooo_tiny,
    "stalled-order": stalled_order,
}


def main():
    args = sys.argv[1:]
    scale = 1.0
    only = None
    out = None
    while args:
        a = args.pop(0)
        if a == "--scale" and args:
            scale = float(args.pop(0))
        elif a == "--only" and args:
            only = args.pop(0).split(",")
        elif out is None and not a.startswith("-"):
            out = a
        else:
            sys.exit(__doc__)
    if out is None or scale <= 0:
        sys.exit(__doc__)
    os.makedirs(out, exist_ok=True)
    for name, write in CAPTURES.items():
        if only is None or name in only:
            write(os.path.join(out, name + ".pcap"), scale)


if __name__ == "__main__":
    main()
