#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seeds derived from the real captures.
#   capture, threads: the capture files themselves (large ones truncated to their first 64 KB)
#   decode:  single frames, prefixed with the link-type index byte the target expects
#   http1:   per-TCP-stream conversations re-encoded in the http1 target's chunk format
#   tcp:     a few structured handshake/data/FIN streams plus random inputs
#   http2:   HTTP/2 connections in the http1 chunk format, from the start (mode 0/2) and
#            joined midstream (mode 1/3: the first few hundred bytes of each side dropped)
#   hpack:   the header blocks of each connection direction in a row, and a few alone
#   tls_hello: ClientHello/ServerHello/Certificate bodies, and handshake record streams
#            (client records, then server records, padded to equal length)
#   tls_record: whole TLS connections with their keys (captures with a .keylog beside them):
#            the key log lines of the connection's client random, then the payloads in
#            capture order as the target's chunks; a variant with a gap, two with the keys
#            coming late (after the close, at the fourth chunk)
#   keylog:  the key logs themselves, cut into pieces, with broken lines mixed in, and TLS
#            record streams
#   pii:     strings that hold (or nearly hold) each kind of sensitive data
#   spec:    the project's specs and a hints file
#   diff:    two small specs (3.0 YAML, 2.0 JSON) serving the infer conversations' host and
#            paths, each with the hand-written infer conversations
#   infer:   HTTP/1 conversations with credentials, query strings and JSON, form and
#            multipart bodies (written here), in the target's chunk framing
#   schema:  HTTP bodies exported by tshark (JSON, form, multipart, anything else) and a few
#            written here, each behind a mode byte (limits and split)
# Usage: fuzz/seed.sh   (idempotent; file names are content hashes)
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CORPUS="$FUZZ_DIR/corpus"
CAPTURE_DIRS=(/work/shared/captures "$FUZZ_DIR/../captures")
MAX_CAPTURE=$((1024 * 1024))   # bigger files are truncated
HEAD_BYTES=$((64 * 1024))

mkdir -p "$CORPUS"/{capture,decode,http1,tcp,http2,hpack,tls_hello,tls_record,keylog,pii,schema,infer,spec,diff}

mapfile -t FILES < <(find "${CAPTURE_DIRS[@]}" -type f \( -name '*.pcap' -o -name '*.pcapng' \) 2>/dev/null | sort)
echo "found ${#FILES[@]} capture files" >&2

# --- capture --------------------------------------------------------------------------
for f in "${FILES[@]}"; do
    size=$(stat -c %s "$f")
    tmp=$(mktemp)
    if (( size > MAX_CAPTURE )); then
        head -c "$HEAD_BYTES" "$f" >"$tmp"      # a truncated capture is still a fine seed
    else
        cp "$f" "$tmp"
    fi
    sum=$(sha1sum "$tmp" | cut -d' ' -f1)
    mv "$tmp" "$CORPUS/capture/$sum"
    # Large-but-kept files also get a 64 KB head, so short variants exist too.
    if (( size > HEAD_BYTES && size <= MAX_CAPTURE )); then
        head -c "$HEAD_BYTES" "$f" >"$tmp"
        sum=$(sha1sum "$tmp" | cut -d' ' -f1)
        mv "$tmp" "$CORPUS/capture/$sum"
    fi
done
# threads runs the same inputs as capture, on one thread and on three.
mkdir -p "$CORPUS/threads"
cp -n "$CORPUS"/capture/* "$CORPUS/threads/"

# --- decode ---------------------------------------------------------------------------
python3 - "$CORPUS/decode" "${FILES[@]}" <<'PY'
import hashlib, os, struct, sys

LINKTYPES = [0, 1, 12, 14, 101, 105, 108, 113, 127, 228, 229, 239, 276]
PER_FILE = 40          # frames kept per capture file
MAX_FRAME = 65535

out = sys.argv[1]

def pcap_frames(data):
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    else:
        return
    if len(data) < 24:
        return
    linktype = struct.unpack(e + 'I', data[20:24])[0] & 0x0fffffff
    at = 24
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + 'IIII', data[at:at + 16])
        at += 16
        frame = data[at:at + incl]
        at += incl
        yield linktype, frame

def pcapng_frames(data):
    at, e, ifaces = 0, '<', []
    while at + 12 <= len(data):
        btype = struct.unpack('<I', data[at:at + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[at + 8:at + 12]
            e = '<' if bom == b'\x4d\x3c\x2b\x1a' else '>'
            ifaces = []
        btype, blen = struct.unpack(e + 'II', data[at:at + 8])
        if blen < 12 or at + blen > len(data):
            break
        body = data[at + 8:at + blen - 4]
        if btype == 1 and len(body) >= 8:                    # IDB
            ifaces.append(struct.unpack(e + 'H', body[:2])[0])
        elif btype == 6 and len(body) >= 20:                 # EPB
            iface, _, _, cap, _ = struct.unpack(e + 'IIIII', body[:20])
            if iface < len(ifaces):
                yield ifaces[iface], body[20:20 + cap]
        elif btype == 3 and len(body) >= 4 and ifaces:       # SPB
            yield ifaces[0], body[4:]
        at += blen

total = 0
for path in sys.argv[2:]:
    with open(path, 'rb') as fh:
        data = fh.read()
    frames = pcapng_frames(data) if data[:4] == b'\x0a\x0d\x0d\x0a' else pcap_frames(data)
    seen, kept, unknown = set(), 0, set()
    for linktype, frame in frames:
        if linktype not in LINKTYPES:
            unknown.add(linktype)
            continue
        # Prefer diversity: skip frames whose first 64 bytes were already kept
        # (same headers), except for a few that carry payload.
        key = (linktype, frame[:64], len(frame) > 200)
        if key in seen:
            continue
        seen.add(key)
        seed = bytes([LINKTYPES.index(linktype)]) + frame[:MAX_FRAME]
        name = hashlib.sha1(seed).hexdigest()
        with open(os.path.join(out, name), 'wb') as fh:
            fh.write(seed)
        kept += 1
        total += 1
        if kept >= PER_FILE:
            break
    if unknown:
        print(f"decode: {os.path.basename(path)}: skipped link types {sorted(unknown)}", file=sys.stderr)
print(f"decode: {total} frame seeds", file=sys.stderr)
PY

# --- http1 ----------------------------------------------------------------------------
# One seed per TCP stream (first few streams of each file): payloads in capture order,
# each cut into chunks of <= 64 bytes, control byte = side<<7 | (len-1). The client side
# is the one that sent the first payload. A second variant replaces one server chunk by
# a gap (control bit 6, first chunk byte < 8).
HTTP1_PY=$(cat <<'PY'
import hashlib, os, sys

out = sys.argv[1]
STREAMS_PER_FILE = 4
MAX_SEED = 60000
total = 0

def write(seed):
    global total
    with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), 'wb') as fh:
        fh.write(seed)
    total += 1

def encode(mode, msgs, gap_at=None):
    buf = bytearray([mode])
    n = 0
    for side, payload in msgs:
        for i in range(0, len(payload), 64):
            chunk = payload[i:i + 64]
            ctl = (0x80 if side else 0) | (len(chunk) - 1)
            if gap_at is not None and side == 1 and n == gap_at:
                ctl |= 0x40
                chunk = b'\x00' + chunk[1:]
            if side == 1:
                n += 1
            if len(buf) + 1 + len(chunk) > MAX_SEED:
                return bytes(buf)
            buf.append(ctl)
            buf += chunk
    return bytes(buf)

def flush(streams):
    for k, (sid, msgs) in enumerate(list(streams.items())[:STREAMS_PER_FILE]):
        client = msgs[0][0]
        msgs = [(0 if port == client else 1, p) for port, p in msgs]
        if not any(p[:16].split(b' ')[0].isalpha() or p.startswith(b'HTTP/') for _, p in msgs[:2]):
            continue  # not HTTP-looking (TLS etc.)
        write(encode(k % 4, msgs))
        write(encode((k + 1) % 4, msgs, gap_at=2))

streams = {}
for line in sys.stdin:
    line = line.rstrip('\n')
    if line == '#END':
        flush(streams)
        streams = {}
        continue
    parts = line.split('\t')
    if len(parts) < 3 or not parts[2]:
        continue
    try:
        payload = bytes.fromhex(parts[2].replace(':', ''))
    except ValueError:
        continue
    streams.setdefault(parts[0], []).append((parts[1], payload))
print(f"http1: {total} conversation seeds", file=sys.stderr)
PY
)
if command -v tshark >/dev/null; then
    for f in "${FILES[@]}"; do
        tshark -r "$f" -Y 'tcp.len > 0' -T fields -E occurrence=f \
            -e tcp.stream -e tcp.srcport -e tcp.payload 2>/dev/null || true
        echo "#END"
    done | python3 -c "$HTTP1_PY" "$CORPUS/http1"
else
    echo "tshark not found: no http1 seeds from captures" >&2
fi

# A couple of hand-written conversations so the corpus is never empty.
python3 - "$CORPUS/http1" <<'PY'
import hashlib, os, sys
out = sys.argv[1]
def enc(mode, msgs):
    b = bytearray([mode])
    for side, p in msgs:
        for i in range(0, len(p), 64):
            c = p[i:i + 64]
            b.append((0x80 if side else 0) | (len(c) - 1)); b += c
    return bytes(b)
convs = [
    [(0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
     (1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n")],
    [(0, b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
     (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nX-T: 1\r\n\r\n")],
    [(0, b"HEAD / HTTP/1.0\r\n\r\n"), (1, b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n")],
    [(0, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
     (1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")],
    [(0, b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
     (1, b"HTTP/1.1 100 Continue\r\n\r\n"), (0, b"abc"), (1, b"HTTP/1.1 201 Created\r\n\r\n")],
    [(1, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close")],
]
for i, c in enumerate(convs):
    for mode in range(4):
        s = enc(mode, c)
        open(os.path.join(out, hashlib.sha1(s).hexdigest()), 'wb').write(s)
PY

# --- tcp ------------------------------------------------------------------------------
# Segment header: [side|port, flags, seq(4, multiplied by 0x0101 in the target),
# len/4, ts/missing], followed by len payload bytes.
python3 - "$CORPUS/tcp" <<'PY'
import hashlib, os, random, struct, sys
out = sys.argv[1]
INV = pow(0x0101, -1, 1 << 32)
FIN, SYN, RST, ACK = 1, 2, 4, 0x10
def seg(server, port, flags, seq, payload=b'', t=0):
    assert len(payload) % 4 == 0 and len(payload) <= 255 * 4
    raw = (seq * INV) & 0xffffffff
    return bytes([(0x80 if server else 0) | port, flags]) + struct.pack('>I', raw) + bytes([len(payload) // 4, t]) + payload
def write(b):
    open(os.path.join(out, hashlib.sha1(b).hexdigest()), 'wb').write(b)
req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
req += b' ' * (-len(req) % 4)
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nbodyyy"
c, s = 1000, 5000
hs = seg(0, 0, SYN, c) + seg(1, 0, SYN | ACK, s) + seg(0, 0, ACK, c + 1)
write(hs + seg(0, 0, ACK, c + 1, req) + seg(1, 0, ACK, s + 1, resp) + seg(0, 0, FIN | ACK, c + 1 + len(req)) + seg(1, 0, FIN | ACK, s + 1 + len(resp)))
# out of order / overlap / retransmission
write(hs + seg(0, 0, ACK, c + 1 + 16, req[16:]) + seg(0, 0, ACK, c + 1, req[:20]) + seg(0, 0, ACK, c + 1, req) + seg(1, 0, RST, s + 1))
# no handshake, several ports, a hole, timestamps moving on
write(seg(0, 1, ACK, 7, req) + seg(0, 1, ACK, 7 + len(req) + 400, req, t=0x21) + seg(1, 2, ACK, 9, resp, t=0x03) + seg(0, 3, SYN, 1) + seg(1, 3, RST, 0, t=0xf0))
# many small segments filling the buffer cap
b = hs
for i in range(60):
    b += seg(0, 0, ACK, c + 1 + 2000 - i * 32, bytes([65 + i % 26]) * 32)
write(b)
rng = random.Random(1234)
for i in range(24):
    write(bytes(rng.randrange(256) for _ in range(rng.choice([16, 64, 256, 1024, 4096]))))
PY

# --- http2 / hpack ----------------------------------------------------------------------
# The HTTP/2 captures, one TCP stream at a time (client = side that sent the first payload).
# Connections that began with an HTTP/1.1 Upgrade lose the HTTP/1 part (client up to the
# preface, server up to the end of the 101 head); streams without a preface are skipped.
#   http2: the http1 chunk format; mode 0 and 2 (max_body) from the start, plus one with a
#          server gap; mode 1 and 3 (midstream) with the first 200/300/500 bytes of each side
#          dropped (and, for long connections, a window from the middle).
#   hpack: the header blocks (HEADERS + CONTINUATION, PUSH_PROMISE; padding and priority
#          stripped) of each direction in a row, as one seed; the first few blocks alone too.
H2_FILES=()
for f in /work/shared/captures/http2/*.pcap /work/shared/captures/api/grpc-*.pcapng \
         "$FUZZ_DIR"/../captures/{h2-prior-knowledge,grpc,h2c-nghttp}.pcap; do
    [[ -f "$f" ]] && H2_FILES+=("$f")
done
H2_PY=$(cat <<'PY'
import hashlib, os, sys

out_h2, out_hpack = sys.argv[1], sys.argv[2]
PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
MAX_SEED = 60000
counts = {'http2': 0, 'hpack': 0}

def write(kind, seed):
    if not seed:
        return
    out = out_h2 if kind == 'http2' else out_hpack
    with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), 'wb') as fh:
        fh.write(seed)
    counts[kind] += 1

def encode(mode, msgs, gap_at=None):
    buf = bytearray([mode])
    n = 0
    for side, payload in msgs:
        for i in range(0, len(payload), 64):
            chunk = payload[i:i + 64]
            ctl = (0x80 if side else 0) | (len(chunk) - 1)
            if gap_at is not None and side == 1 and n == gap_at:
                ctl |= 0x40
                chunk = b'\x00' + chunk[1:]
            if side == 1:
                n += 1
            if len(buf) + 1 + len(chunk) > MAX_SEED:
                return bytes(buf)
            buf.append(ctl)
            buf += chunk
    return bytes(buf)

def drop(msgs, skip):
    """Drops the first skip[side] bytes of each side."""
    skip = dict(skip)
    kept = []
    for side, p in msgs:
        n = min(skip[side], len(p))
        skip[side] -= n
        if p[n:]:
            kept.append((side, p[n:]))
    return kept

def header_blocks(data):
    blocks, at, pending = [], 0, None
    while at + 9 <= len(data):
        length = int.from_bytes(data[at:at + 3], 'big')
        kind, flags = data[at + 3], data[at + 4]
        p = data[at + 9:at + 9 + length]
        at += 9 + length
        if len(p) < length or kind > 9:
            break
        if kind in (1, 5):
            if flags & 0x8 and p:
                p = p[1:len(p) - p[0]] if p[0] < len(p) else b''
            if kind == 1 and flags & 0x20:
                p = p[5:]
            if kind == 5:
                p = p[4:]
            pending = bytearray(p)
        elif kind == 9 and pending is not None:
            pending += p
        else:
            continue
        if flags & 0x4:
            blocks.append(bytes(pending))
            pending = None
    return blocks

def flush(streams):
    for msgs in streams.values():
        client = msgs[0][0]
        msgs = [(0 if port == client else 1, p) for port, p in msgs]
        c = b''.join(p for s, p in msgs if s == 0)
        s = b''.join(p for s, p in msgs if s == 1)
        at = c.find(PREFACE)
        if at < 0:
            continue
        s_at = s.find(b'\r\n\r\n') + 4 if s.startswith(b'HTTP/1.') else 0
        h2 = drop(msgs, {0: at, 1: s_at})
        write('http2', encode(0, h2))
        write('http2', encode(2, h2))
        write('http2', encode(2, h2, gap_at=3))
        for k, d in enumerate((200, 300, 500)):
            write('http2', encode(1 if k % 2 == 0 else 3, drop(h2, {0: d, 1: d})))
        if len(c) + len(s) > 2 * MAX_SEED:
            write('http2', encode(1, drop(h2, {0: len(c) // 2, 1: len(s) // 2})))
        for data in (c[at + len(PREFACE):], s[s_at:]):
            blocks = header_blocks(data)
            seed = b''
            for b in blocks:
                if len(seed) + len(b) > MAX_SEED:
                    break
                seed += b
            write('hpack', seed)
            for b in blocks[:4]:
                write('hpack', b)

streams = {}
for line in sys.stdin:
    line = line.rstrip('\n')
    if line == '#END':
        flush(streams)
        streams = {}
        continue
    parts = line.split('\t')
    if len(parts) < 3 or not parts[2]:
        continue
    try:
        payload = bytes.fromhex(parts[2].replace(':', ''))
    except ValueError:
        continue
    streams.setdefault(parts[0], []).append((parts[1], payload))
print(f"http2: {counts['http2']} conversation seeds, hpack: {counts['hpack']} header-block seeds", file=sys.stderr)
PY
)
if command -v tshark >/dev/null; then
    for f in "${H2_FILES[@]}"; do
        tshark -r "$f" -Y 'tcp.len > 0 && !tcp.analysis.retransmission' -T fields -E occurrence=f \
            -e tcp.stream -e tcp.srcport -e tcp.payload 2>/dev/null || true
        echo "#END"
    done | python3 -c "$H2_PY" "$CORPUS/http2" "$CORPUS/hpack"
else
    echo "tshark not found: no http2/hpack seeds from captures" >&2
fi

# --- tls_hello --------------------------------------------------------------------------
# The TLS captures, per TCP stream (client = first sender, must start with a handshake
# record). Seeds: the ClientHello, ServerHello and Certificate bodies (after the 4-byte
# handshake header), and the record streams as the target splits them: client records,
# then server records, the shorter side padded (an application-data record) to equal
# length; once up to the first ChangeCipherSpec, once with a few records more.
TLS_FILES=()
for f in /work/shared/captures/tls/*.pcap /work/shared/captures/formats/pcapng-22-interfaces.pcapng \
         "$FUZZ_DIR"/../captures/tls-alpn.pcap; do
    [[ -f "$f" ]] && TLS_FILES+=("$f")
done
TLS_PY=$(cat <<'PY'
import hashlib, os, sys

out = sys.argv[1]
STREAMS_PER_FILE = 8
MAX_SIDE = 30000
total = 0

def write(seed):
    global total
    if not seed:
        return
    with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), 'wb') as fh:
        fh.write(seed)
    total += 1

def records(data):
    at = 0
    while at + 5 <= len(data):
        n = int.from_bytes(data[at + 3:at + 5], 'big')
        yield data[at:at + 5 + n]
        at += 5 + n

def side_streams(data):
    """(records up to the first ChangeCipherSpec, records with a few more, handshake bytes)"""
    short, long_, hs, extra, ccs = b'', b'', b'', 0, False
    for r in records(data):
        if len(long_) + len(r) > MAX_SIDE or extra >= 3:
            break
        long_ += r
        if r[0] in (20, 23):
            ccs = True
        if ccs:
            extra += 1
            continue
        short += r
        if r[0] == 22:
            hs += r[5:]
    return short, long_, hs

def pad(b, n):
    d = n - len(b)
    if d >= 5:
        return b + bytes([23, 3, 3]) + (d - 5).to_bytes(2, 'big') + bytes(d - 5)
    return b + bytes(d)

def flush(streams):
    for msgs in list(streams.values())[:STREAMS_PER_FILE]:
        client = msgs[0][0]
        c = b''.join(p for port, p in msgs if port == client)
        s = b''.join(p for port, p in msgs if port != client)
        if c[:2] != b'\x16\x03':
            continue
        cs, cl, chs = side_streams(c)
        ss, sl, shs = side_streams(s)
        for a, b in ((cs, ss), (cl, sl)):
            n = max(len(a), len(b))
            write(pad(a, n) + pad(b, n))
        for hs, wanted in ((chs, (1,)), (shs, (2, 11))):
            at = 0
            while at + 4 <= len(hs):
                kind, n = hs[at], int.from_bytes(hs[at + 1:at + 4], 'big')
                if kind in wanted:
                    write(hs[at + 4:at + 4 + n])
                at += 4 + n

streams = {}
for line in sys.stdin:
    line = line.rstrip('\n')
    if line == '#END':
        flush(streams)
        streams = {}
        continue
    parts = line.split('\t')
    if len(parts) < 3 or not parts[2]:
        continue
    try:
        payload = bytes.fromhex(parts[2].replace(':', ''))
    except ValueError:
        continue
    streams.setdefault(parts[0], []).append((parts[1], payload))
print(f"tls_hello: {total} seeds", file=sys.stderr)
PY
)
if command -v tshark >/dev/null; then
    for f in "${TLS_FILES[@]}"; do
        tshark -r "$f" -Y 'tcp.len > 0 && !tcp.analysis.retransmission' -T fields -E occurrence=f \
            -e tcp.stream -e tcp.srcport -e tcp.payload 2>/dev/null || true
        echo "#END"
    done | python3 -c "$TLS_PY" "$CORPUS/tls_hello"
else
    echo "tshark not found: no tls_hello seeds from captures" >&2
fi

# --- pii ------------------------------------------------------------------------------
# Published test values (Stripe/Visa test cards, IBAN registry examples, AWS docs key,
# the jwt.io token), near misses, and a JSON body holding several.
while IFS= read -r seed; do
    printf '%b' "$seed" >"$CORPUS/pii/$(printf '%b' "$seed" | sha1sum | cut -d' ' -f1)"
done <<'SEEDS'
mail john.doe+tag@example.co.uk, icon@2x.png, https://user:pw@host.example.com/
+1 (555) 123-4567 / 555.123.4567 / +44 20 7946 0958 / 2024-01-15 / 1.2.3.4
4242 4242 4242 4242 12/34, 378282246310005, 3782-822463-10005, 12344111111111111111
123-45-6789 000-12-3456 GB82WEST12345698765432 DE89 3704 0044 0532 0130 00
Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c
token=eyJhbGciOiJub25lIn0.eyJhZG1pbiI6dHJ1ZX0.
AKIAIOSFODNN7EXAMPLE ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3 sk_live_4eC39HqLyjWDarjtT1zdp7dc
xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX
-----BEGIN RSA PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\\n-----END RSA PRIVATE KEY-----
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
-----END PRIVATE KEY-----
{"email":"a@example.com","card":"4111111111111111","dob":"1990-05-12","phone":"5551234567"}
password=hunter2!
dateOfBirth=12/05/1990
aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
é4111111111111111é 日本john@example.com本 🦀+1 (555) 123-4567🦀
SEEDS

# --- schema ---------------------------------------------------------------------------
SCHEMA_TMP=$(mktemp -d)
if command -v tshark >/dev/null; then
    for f in "${FILES[@]}"; do
        tshark -r "$f" -Q --export-objects "http,$SCHEMA_TMP/$(basename "$f")" 2>/dev/null || true
    done
else
    echo "tshark not found: no schema seeds from captures" >&2
fi
python3 - "$CORPUS/schema" "$SCHEMA_TMP" <<'PY'
import hashlib, os, sys

out, exported = sys.argv[1], sys.argv[2]
MAX = 64 * 1024
bodies = []
for root, _, files in os.walk(exported):
    for name in sorted(files):
        with open(os.path.join(root, name), 'rb') as fh:
            bodies.append(fh.read(MAX))
bodies += [
    b'{"data":[{"id":1,"email":"ann@example.com","status":"active","tags":["a"]},'
    b'{"id":2.5,"status":"suspended","at":"2026-01-01T00:00:00Z","ip":"10.0.0.1"}],"next":null}',
    b'[{"a":{"b":{"c":{"d":[1,[2,[3]]]}}}},"x",null,true,{"k0":0,"k1":1,"k2":2,"k3":3}]',
    b'[' * 120 + b']' * 120,
    b'age=42&name=Ann+Lee&ratio=1.5&tag=a&tag=b&e%2Dmail=x%40y.org',
    b'--XyZ\r\nContent-Disposition: form-data; name="t"\r\n\r\n3\r\n--XyZ\r\n'
    b'Content-Disposition: form-data; name="f"; filename="a.png"\r\n\r\n\x89PNG\r\n--XyZ--\r\n',
]
n = 0
for i, body in enumerate(bodies):
    for mode in (0, 1 + 4 * (i % 8), 2, 3 + 4 * ((i * 3) % 8)):
        seed = bytes([mode]) + body
        with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), 'wb') as fh:
            fh.write(seed)
        n += 1
print(f"schema: {n} seeds", file=sys.stderr)
PY
rm -rf "$SCHEMA_TMP"

# --- infer ----------------------------------------------------------------------------
# A mode byte, then chunks: a control byte (bit 7: server side; bits 0-6: length - 1).
python3 - "$CORPUS/infer" <<'PY'
import base64, hashlib, json, os, sys
out = sys.argv[1]
def b64(d): return base64.urlsafe_b64encode(d).rstrip(b"=")
jwt = b".".join([b64(b'{"alg":"HS256"}'), b64(json.dumps({"iss": "https://id.test", "aud": ["shop"], "sub": "u1", "exp": 1}).encode()), b"c2ln"])
body = json.dumps({"user": {"email": "a@b.co", "phone": "+14155550123", "dob": "1990-01-02"}, "items": [{"id": 1, "status": "active"}]}).encode()
form = b"grant_type=client_credentials&client_id=x&client_secret=s3cr3t"
mp = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XyZ--\r\n"
def req(method, target, headers, body=b""):
    h = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    if body: h += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    return method + b" " + target + b" HTTP/1.1\r\nHost: api.test\r\n" + h + b"\r\n" + body
def resp(body, ctype=b"application/json"):
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
convs = [
    [(0, req(b"GET", b"/users/42?limit=5&api_key=k", [(b"Authorization", b"Bearer " + jwt)])), (1, resp(body))],
    [(0, req(b"POST", b"/auth/token", [(b"Content-Type", b"application/x-www-form-urlencoded")], form)), (1, resp(json.dumps({"token": jwt.decode()}).encode()))],
    [(0, req(b"POST", b"/uploads", [(b"Content-Type", b"multipart/form-data; boundary=XyZ"), (b"Cookie", b"session=abc")], mp)), (1, resp(b"{}"))],
    [(0, req(b"GET", b"/a/b/c/d", [(b"X-API-Key", b"key")])), (1, resp(b"[1,2,{\"x\":null}]"))],
]
n = 0
for mode in (0, 1, 2, 3):
    for conv in convs:
        seed = bytes([mode])
        for side, data in conv:
            for i in range(0, len(data), 100):
                chunk = data[i:i + 100]
                seed += bytes([(side << 7) | (len(chunk) - 1)]) + chunk
        with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), "wb") as fh:
            fh.write(seed)
        n += 1
print(f"infer: {n} seeds", file=sys.stderr)
PY

# --- spec -----------------------------------------------------------------------------
cp "$FUZZ_DIR"/../specs/*.yaml "$CORPUS/spec/" 2>/dev/null || true
cp "$FUZZ_DIR"/../tests/fixtures/specs/versions/*.yaml "$CORPUS/spec/" 2>/dev/null || true
cp "$FUZZ_DIR"/../tests/fixtures/specs/public/scalar-galaxy.openapi31.yaml "$CORPUS/spec/" 2>/dev/null || true
printf '/files/{path*}\n/teams/{team}\n# comment\n/users/new\n' >"$CORPUS/spec/hints.txt"
printf '{"swagger":"2.0","basePath":"/api","paths":{"/u/{id}":{},"/f/{n}.json":{}}}' >"$CORPUS/spec/v2.json"

# --- diff -----------------------------------------------------------------------------
# A small spec, a NUL, then an infer seed (a conversation in the http1 chunk framing),
# minus the infer target's mode byte.
python3 - "$CORPUS/infer" "$CORPUS/diff" <<'PY'
import hashlib, os, sys
src, dst = sys.argv[1], sys.argv[2]
specs = [
    b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://api.test'}]\n"
    b"paths:\n  /users/{id}:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: integer}}, "
    b"{name: limit, in: query, required: true, schema: {type: integer}}]\n"
    b"      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, properties: {email: {type: string}}}}}}}\n"
    b"  /users/me:\n    get: {deprecated: true, responses: {'200': {description: ok}}}\n"
    b"  /auth/token:\n    post: {requestBody: {content: {application/x-www-form-urlencoded: {schema: {type: object, "
    b"properties: {grant_type: {type: string}}}}}}, responses: {'200': {description: ok}}}\n"
    b"  /a/b/c/d:\n    get: {security: [{k: []}], responses: {'200': {description: ok}}}\n",
    b'{"swagger":"2.0","info":{"title":"t","version":"1"},"host":"api.test","basePath":"/",'
    b'"paths":{"/items/{n}.json":{"post":{"security":[{"k":[]}],"responses":{"201":{"description":"ok"}}}}},'
    b'"securityDefinitions":{"k":{"type":"apiKey","in":"query","name":"api_key"}}}',
]
os.makedirs(dst, exist_ok=True)
n = 0
# The hand-written conversations (to api.test) first, not the fuzzer's leftovers.
def written(name):
    with open(os.path.join(src, name), "rb") as fh:
        return b"Host: api.test" in fh.read(400)
for name in sorted(os.listdir(src), key=lambda n: (not written(n), n))[:40]:
    with open(os.path.join(src, name), "rb") as fh:
        conv = fh.read()[1:]
    for spec in specs:
        seed = spec + b"\0" + conv
        with open(os.path.join(dst, hashlib.sha1(seed).hexdigest()), "wb") as fh:
            fh.write(seed)
        n += 1
print(f"diff: {n} seeds", file=sys.stderr)
PY

# --- tls_record, keylog ------------------------------------------------------------------
python3 - "$CORPUS/tls_record" "$CORPUS/keylog" /work/shared/captures/tls "$FUZZ_DIR/../captures" <<'PY'
import hashlib, os, struct, subprocess, sys

rec_out, kl_out, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
MAX_SEED = 200000
counts = [0, 0]

def write(d, seed, i):
    with open(os.path.join(d, hashlib.sha1(seed).hexdigest()), 'wb') as fh:
        fh.write(seed)
    counts[i] += 1

for d in dirs:
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        if not name.endswith('.keylog'):
            continue
        keylog = os.path.join(d, name)
        cap = keylog[:-len('.keylog')] + '.pcap'
        if not os.path.exists(cap):
            continue
        lines = open(keylog, 'rb').read().splitlines()
        # keylog seeds: whole, in pieces, with broken lines
        write(kl_out, b'\n'.join(lines) + b'\n', 1)
        for i in range(0, len(lines), 4):
            write(kl_out, b'\n'.join(lines[i:i + 4]), 1)
        write(kl_out, b'CLIENT_RANDOM zz 00\n# comment\n\n' + b'\n'.join(lines[:3]) + b'\nRSA 00 11\n', 1)
        try:
            rows = subprocess.run(
                ['tshark', '-r', cap, '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.srcport',
                 '-e', 'tcp.payload', '-Y', 'tcp.len > 0'],
                capture_output=True, check=True).stdout.decode().splitlines()
        except (OSError, subprocess.CalledProcessError):
            print(f"tls_record: tshark failed on {cap}, skipped", file=sys.stderr)
            continue
        streams = {}
        for row in rows:
            parts = row.split('\t')
            if len(parts) < 3 or not parts[2]:
                continue
            streams.setdefault(parts[0], []).append((parts[1], bytes.fromhex(parts[2].replace(':', ''))))
        for sid, msgs in streams.items():
            client = msgs[0][0]
            first = msgs[0][1]
            if len(first) < 43 or first[0] != 22:
                continue
            # the client random: record header 5, handshake header 4, version 2
            random_hex = first[11:43].hex().encode()
            keys = b'\n'.join(l for l in lines if random_hex in l.lower())
            # keys known at the start, with a gap; keys that come late (length bit 15): after
            # the close, or at the fourth chunk (control bit 5)
            for gap, late, late_at in ((False, False, -1), (True, False, -1),
                                       (False, True, -1), (False, True, 3)):
                seed = bytearray(struct.pack('>H', len(keys) | (0x8000 if late else 0)) + keys)
                for k, (port, payload) in enumerate(msgs):
                    side = 0 if port == client else 0x80
                    ctl = side | (0x40 if gap and k == len(msgs) // 2 else 0) | (0x20 if k == late_at else 0)
                    if len(seed) + 3 + len(payload) > MAX_SEED:
                        break
                    seed += bytes([ctl]) + struct.pack('>H', len(payload)) + payload
                write(rec_out, bytes(seed), 0)
            # the record stream alone, for the keylog target's record reader
            write(kl_out, b''.join(p for port, p in msgs if port == client)[:20000], 1)
print(f"tls_record: {counts[0]} seeds, keylog: {counts[1]} seeds", file=sys.stderr)
PY

for t in capture decode http1 tcp http2 hpack tls_hello tls_record keylog pii schema infer spec diff; do
    printf '%-8s %5d files\n' "$t" "$(find "$CORPUS/$t" -type f | wc -l)"
done
