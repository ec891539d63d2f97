#!/usr/bin/env python3
"""Small real WebSocket (RFC 6455) server and client used to record websocket.pcap.

Python standard library only: the handshake (Sec-WebSocket-Accept = base64(sha1(key + GUID)))
and the frame codec are written out below.  No extensions (no permessage-deflate).

USAGE
    ws_echo.py serve  --port N   # 127.0.0.1 only, HTTP/1.1 keep-alive; prints "listening on ..."
    ws_echo.py client --port N   # the fixed exchange below; exit 1 on any surprise

Server routes
    GET /ws      with Upgrade: websocket -> 101 Switching Protocols (subprotocol chat.v1 if
                 offered), then: a server text greeting, echo of every text ("echo: ...") and
                 binary (bytes reversed) message, pong for ping, one server-initiated binary
                 frame after the first binary message, and the close handshake.
    GET /status  -> 200 application/json
    anything else -> 404 application/json

Client: connection 1 upgrades /ws and exchanges, waiting for each answer before the next send:
    C->S text "hello"                      S->C text greeting (sent right after the 101)
    C->S text JSON subscribe               S->C text echo
    C->S binary 16 bytes                   S->C binary echo (reversed) + binary 8-byte "tick"
    C->S ping "keepalive"                  S->C pong "keepalive"
    C->S text 300 bytes (16-bit length)    S->C text echo (16-bit length)
    C->S text in 2 fragments (FIN=0 text, FIN=1 continuation)  S->C one text echo
    C->S close 1000 "bye"                  S->C close 1000
connection 2: GET /status HTTP/1.1 (Connection: close) -> 200.
Client frames are masked with keys from a seeded PRNG, so payload bytes on the wire are stable
between recordings.
"""
import argparse
import base64
import hashlib
import json
import random
import socket
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_FRAME = 1 << 20


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def encode_frame(opcode, payload, fin=True, mask_key=None):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask_key is not None else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask_key is None:
        return head + payload
    return head + mask_key + bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))


def read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise EOFError("connection closed")
    return data


def read_frame(f):
    """(fin, opcode, payload), unmasking if needed."""
    b0, b1 = read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(f, 8))[0]
    if n > MAX_FRAME:
        raise ValueError("frame too large")
    key = read_exact(f, 4) if b1 & 0x80 else None
    payload = read_exact(f, n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), b0 & 0x0F, payload


# ---------------------------------------------------------------- server
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ws-echo/1.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        sys.stderr.write("ws_echo: %s\n" % (fmt % args))

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path == "/status":
            return self.send_json(200, {"status": "ok", "websocket": "/ws", "subprotocols": ["chat.v1"]})
        self.send_json(404, {"error": "not_found"})

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Sec-WebSocket-Version") != "13" or len(base64.b64decode(key + "==")[:16]) != 16:
            return self.send_json(400, {"error": "bad_handshake"})
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if "chat.v1" in offered:
            self.send_header("Sec-WebSocket-Protocol", "chat.v1")
        self.end_headers()
        self.close_connection = True
        w = self.wfile
        w.write(encode_frame(OP_TEXT, b'{"type":"welcome","server":"ws-echo/1.0"}'))
        w.flush()
        frags, frag_op, sent_tick = [], None, False
        while True:
            fin, op, payload = read_frame(self.rfile)
            if op == OP_PING:
                w.write(encode_frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                w.write(encode_frame(OP_CLOSE, payload[:2] if len(payload) >= 2 else b""))
                w.flush()
                return
            elif op in (OP_TEXT, OP_BIN, OP_CONT):
                if op != OP_CONT:
                    frag_op = op
                frags.append(payload)
                if not fin:
                    continue
                msg, frags = b"".join(frags), []
                if frag_op == OP_TEXT:
                    w.write(encode_frame(OP_TEXT, b"echo: " + msg))
                else:
                    w.write(encode_frame(OP_BIN, msg[::-1]))
                    if not sent_tick:
                        w.write(encode_frame(OP_BIN, struct.pack("!II", 0x5EC7E401, 1)))
                        sent_tick = True
            w.flush()


def serve(port):
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print("ws_echo: listening on 127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------- client
def client(port):
    rnd = random.Random(6455)
    mask = lambda: bytes(rnd.randrange(256) for _ in range(4))
    key = base64.b64encode(bytes(rnd.randrange(256) for _ in range(16))).decode()
    problems = []

    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: specter-ws-client/1.0\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1, chat.v0\r\n"
               "Origin: http://127.0.0.1:%d\r\n\r\n" % (port, key, port)).encode())
    status = f.readline()
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    if b" 101 " not in status or headers.get("sec-websocket-accept") != accept_key(key):
        print("ws_echo client: bad handshake %r %r" % (status, headers), file=sys.stderr)
        return 1
    print("handshake: %s accept=%s protocol=%s" % (status.decode().strip(), headers["sec-websocket-accept"],
                                                   headers.get("sec-websocket-protocol")))

    def send(op, payload, fin=True):
        s.sendall(encode_frame(op, payload, fin, mask()))

    def expect(op, check=None, what=""):
        fin, got_op, payload = read_frame(f)
        ok = fin and got_op == op and (check is None or check(payload))
        print("  recv op=%d len=%d %s%s" % (got_op, len(payload), payload[:60], "" if ok else "  <-- UNEXPECTED"))
        if not ok:
            problems.append("expected op %d (%s), got op %d %r" % (op, what, got_op, payload[:60]))
        return payload

    expect(OP_TEXT, lambda p: b"welcome" in p, "greeting")
    send(OP_TEXT, b"hello")
    expect(OP_TEXT, lambda p: p == b"echo: hello", "echo hello")
    sub = json.dumps({"type": "subscribe", "channel": "orders", "since": 1001}).encode()
    send(OP_TEXT, sub)
    expect(OP_TEXT, lambda p: p == b"echo: " + sub, "echo subscribe")
    blob = bytes(range(0xA0, 0xB0))
    send(OP_BIN, blob)
    expect(OP_BIN, lambda p: p == blob[::-1], "binary echo")
    expect(OP_BIN, lambda p: len(p) == 8, "tick")
    send(OP_PING, b"keepalive")
    expect(OP_PONG, lambda p: p == b"keepalive", "pong")
    long_text = ("The quick brown fox jumps over the lazy dog. " * 7)[:300].encode()
    send(OP_TEXT, long_text)
    expect(OP_TEXT, lambda p: p == b"echo: " + long_text, "long echo")
    send(OP_TEXT, b'{"type":"chat","text":"frag', fin=False)
    send(OP_CONT, b'mented message"}')
    expect(OP_TEXT, lambda p: p == b'echo: {"type":"chat","text":"fragmented message"}', "fragmented echo")
    send(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
    expect(OP_CLOSE, lambda p: p[:2] == struct.pack("!H", 1000), "close")
    f.close()
    s.close()

    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET /status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: specter-ws-client/1.0\r\n"
               "Accept: application/json\r\nConnection: close\r\n\r\n" % port).encode())
    data = b""
    while len(data) < 1 << 20:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    print("GET /status -> %s" % data.split(b"\r\n", 1)[0].decode())
    if not data.startswith(b"HTTP/1.1 200 "):
        problems.append("GET /status: %r" % data[:80])

    for p in problems:
        print("ws_echo client: " + p, file=sys.stderr)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("serve", "client"))
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    if a.mode == "serve":
        serve(a.port)
    else:
        sys.exit(client(a.port))


if __name__ == "__main__":
    main()
