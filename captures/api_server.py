#!/usr/bin/env python3
"""Small real JSON API used to record specter's own test captures (see record.sh).

Python standard library only.  HTTP/1.1 with keep-alive (ThreadingHTTPServer,
protocol_version = "HTTP/1.1"), listening on 127.0.0.1 only.

Routes (all JSON unless noted):
  GET    /healthz                          200 text/plain "ok"
  GET    /api/v1/users[?limit=N]           200 list of users
  GET    /api/v1/users/{id}                200 user | 404
  POST   /api/v1/users                     201 + Location (JSON body with name, email) | 400
  PUT    /api/v1/users/{id}                200 updated user | 404 | 400
  DELETE /api/v1/users/{id}                204 (no body) | 404
  GET    /api/v1/orders/{id}[?expand=items] 200 order (items inlined when expand=items) | 404
  GET    /api/v1/events                    200, Transfer-Encoding: chunked (several chunks)
  GET    /api/v1/reports/summary           200, Content-Encoding: gzip if the client accepts it
  GET    /api/v1/reports/daily             200, chunked and (if accepted) gzip at once
  GET    /api/v1/export                    200, ~200 KB JSON with Content-Length
  POST   /api/v1/uploads                   201 {bytes, sha256}; body by Content-Length or chunked;
                                           Expect: 100-continue answered with 100, or with an
                                           immediate 413 (no 100) when Content-Length > 512 KiB
  anything else                            404 {"error": "not_found"} (405 for a wrong method)

Everything is deterministic (fixed data, gzip mtime 0) apart from the Date header.
"""
import argparse
import gzip
import hashlib
import json
import re
import sys
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_UPLOAD = 512 * 1024
MAX_BODY_READ = 4 * 1024 * 1024

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
LAST = ["anderson", "baker", "clark", "davis", "evans", "foster", "garcia", "hughes", "irwin", "jones"]


def make_user(uid):
    first = FIRST[(uid - 1) % len(FIRST)]
    last = LAST[((uid - 1) // len(FIRST)) % len(LAST)]
    return {
        "id": uid,
        "name": f"{first.capitalize()} {last.capitalize()}",
        "email": f"{first}@example.com" if uid <= len(FIRST) else f"{first}.{last}{uid}@example.com",
        "role": "admin" if uid == 1 else "member",
        "active": uid % 7 != 0,
        "created_at": f"2024-01-{(uid % 28) + 1:02d}T09:{uid % 60:02d}:00Z",
    }


USERS = {uid: make_user(uid) for uid in range(1, 4)}
NEXT_ID = [4]
LOCK = threading.Lock()


def make_order(oid, expand):
    items = [
        {"sku": f"SKU-{oid % 1000:03d}-{n}", "name": f"Widget {n}", "qty": n, "unit_price": 9.99 + n}
        for n in range(1, 4)
    ]
    order = {
        "id": oid,
        "user_id": (oid % 3) + 1,
        "status": "shipped",
        "currency": "EUR",
        "total": round(sum(i["qty"] * i["unit_price"] for i in items), 2),
        "item_count": len(items),
    }
    if expand:
        order["items"] = items
    else:
        order["items_url"] = f"/api/v1/orders/{oid}?expand=items"
    return order


def summary_report():
    days = [
        {"day": f"2024-03-{d:02d}", "orders": 100 + d * 3, "revenue": round(1234.5 + d * 17.25, 2),
         "top_sku": f"SKU-{d:03d}-1", "region": ["eu-west", "us-east", "ap-south"][d % 3]}
        for d in range(1, 29)
    ]
    return {"report": "summary", "period": "2024-03", "days": days}


def export_body():
    records = []
    for uid in range(1, 801):
        u = make_user(uid)
        u["tags"] = ["customer", "newsletter" if uid % 2 else "no-newsletter"]
        u["address"] = {"street": f"{uid} Example Street", "city": "Springfield", "zip": f"{10000 + uid}"}
        records.append(u)
    return json.dumps({"export": "users", "count": len(records), "records": records},
                      separators=(",", ":")).encode()


EXPORT = export_body()


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "specter-fixture-api/1.0"
    sys_version = ""
    disable_nagle_algorithm = True   # TCP_NODELAY, as nginx and most real servers do

    def version_string(self):
        return self.server_version

    # ---- plumbing -------------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.log:
            self.server.log.write("%s - %s\n" % (self.address_string(), fmt % args))
            self.server.log.flush()

    def handle_expect_100(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_UPLOAD:
            # Final answer instead of 100 Continue: the client must not send the body.
            self.close_connection = True
            self.send_json(413, {"error": "payload_too_large", "limit": MAX_UPLOAD}, close=True)
            return False
        return super().handle_expect_100()

    def accepts_gzip(self):
        ae = self.headers.get("Accept-Encoding", "")
        return any(p.split(";")[0].strip().lower() == "gzip" for p in ae.split(","))

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            for _ in range(100000):
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > MAX_BODY_READ:
                    raise ValueError("body too large")
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_READ:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status, body, ctype="application/json", extra=(), close=False):
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, extra=(), close=False):
        body = json.dumps(obj, indent=None, separators=(", ", ": ")).encode() + b"\n"
        self.send_bytes(status, body, "application/json", extra, close)

    def send_chunked(self, chunks, ctype="application/json", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for c in chunks:
            if not c:
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.flush()
            time.sleep(0.02)  # separate TCP segments, like a real streaming producer
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def not_found(self):
        self.send_json(404, {"error": "not_found", "path": urlsplit(self.path).path})

    # ---- routing ----------------------------------------------------------------
    ROUTES = [
        ("GET", r"/healthz", "healthz"),
        ("GET", r"/api/v1/users", "list_users"),
        ("POST", r"/api/v1/users", "create_user"),
        ("GET", r"/api/v1/users/(\d+)", "get_user"),
        ("PUT", r"/api/v1/users/(\d+)", "update_user"),
        ("DELETE", r"/api/v1/users/(\d+)", "delete_user"),
        ("GET", r"/api/v1/orders/(\d+)", "get_order"),
        ("GET", r"/api/v1/events", "events"),
        ("GET", r"/api/v1/reports/summary", "report_summary"),
        ("GET", r"/api/v1/reports/daily", "report_daily"),
        ("GET", r"/api/v1/export", "export"),
        ("POST", r"/api/v1/uploads", "upload"),
    ]

    def dispatch(self):
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        path_known = False
        for method, pattern, name in self.ROUTES:
            m = re.fullmatch(pattern, parts.path)
            if not m:
                continue
            path_known = True
            if method == self.command or (method == "GET" and self.command == "HEAD"):
                try:
                    return getattr(self, "r_" + name)(*m.groups())
                except ValueError as e:
                    return self.send_json(400, {"error": "bad_request", "detail": str(e)}, close=True)
        if path_known:
            self.read_body_quietly()
            return self.send_json(405, {"error": "method_not_allowed"})
        self.read_body_quietly()
        return self.not_found()

    def read_body_quietly(self):
        try:
            self.read_body()
        except ValueError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = dispatch

    # ---- handlers ---------------------------------------------------------------
    def r_healthz(self):
        self.send_bytes(200, b"ok\n", "text/plain; charset=utf-8")

    def r_list_users(self):
        limit = int(self.query.get("limit", ["50"])[0])
        with LOCK:
            users = [USERS[k] for k in sorted(USERS)][:limit]
        self.send_json(200, {"data": users, "count": len(users), "next": None})

    def r_get_user(self, uid):
        with LOCK:
            u = USERS.get(int(uid))
        if u is None:
            return self.not_found()
        self.send_json(200, u, extra=[("ETag", '"u%s-v1"' % uid), ("Cache-Control", "no-cache")])

    def parse_user(self):
        raw = self.read_body()
        try:
            obj = json.loads(raw or b"null")
        except json.JSONDecodeError as e:
            raise ValueError("invalid JSON: %s" % e) from None
        if not isinstance(obj, dict) or "name" not in obj or "email" not in obj:
            raise ValueError("name and email are required")
        return obj

    def r_create_user(self):
        obj = self.parse_user()
        with LOCK:
            uid = NEXT_ID[0]
            NEXT_ID[0] += 1
            user = {"id": uid, "name": obj["name"], "email": obj["email"], "role": obj.get("role", "member"),
                    "active": True, "created_at": "2024-04-01T12:00:00Z"}
            if "bio" in obj:
                user["bio_length"] = len(str(obj["bio"]))
            USERS[uid] = user
        self.send_json(201, user, extra=[("Location", "/api/v1/users/%d" % uid)])

    def r_update_user(self, uid):
        obj = self.parse_user()
        with LOCK:
            if int(uid) not in USERS:
                return self.not_found()
            USERS[int(uid)].update(name=obj["name"], email=obj["email"])
            user = dict(USERS[int(uid)])
        self.send_json(200, user)

    def r_delete_user(self, uid):
        self.read_body_quietly()
        with LOCK:
            found = USERS.pop(int(uid), None)
        if found is None:
            return self.not_found()
        self.send_bytes(204, b"")

    def r_get_order(self, oid):
        oid = int(oid)
        if oid < 1000 or oid > 1999:
            return self.not_found()
        expand = "items" in ",".join(self.query.get("expand", [])).split(",")
        self.send_json(200, make_order(oid, expand))

    def r_events(self):
        chunks = [b"["]
        for n in range(1, 6):
            ev = {"seq": n, "type": "order.updated", "order_id": 1000 + n, "status": "shipped"}
            chunks.append((b"," if n > 1 else b"") + json.dumps(ev).encode())
        chunks.append(b"]\n")
        self.send_chunked(chunks)

    def r_report_summary(self):
        body = json.dumps(summary_report(), indent=2).encode() + b"\n"
        if self.accepts_gzip():
            self.send_bytes(200, gzip.compress(body, mtime=0), "application/json",
                            [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")])
        else:
            self.send_bytes(200, body, "application/json", [("Vary", "Accept-Encoding")])

    def r_report_daily(self):
        rows = summary_report()["days"]
        parts = [b'{"report": "daily", "rows": [\n']
        for i, r in enumerate(rows):
            parts.append((b",\n" if i else b"") + json.dumps(r).encode())
        parts.append(b"\n]}\n")
        if not self.accepts_gzip():
            return self.send_chunked([b"".join(parts[i:i + 7]) for i in range(0, len(parts), 7)],
                                     extra=[("Vary", "Accept-Encoding")])
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip wrapper; header mtime 0
        out = []
        for i in range(0, len(parts), 7):
            out.append(comp.compress(b"".join(parts[i:i + 7])) + comp.flush(zlib.Z_SYNC_FLUSH))
        out.append(comp.flush())
        self.send_chunked(out, extra=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")])

    def r_export(self):
        self.send_bytes(200, EXPORT, "application/json",
                        [("Content-Disposition", 'attachment; filename="users-export.json"')])

    def r_upload(self):
        body = self.read_body()
        self.send_json(201, {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                             "content_type": self.headers.get("Content-Type", "")},
                       extra=[("Location", "/api/v1/uploads/1")])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--log", help="access log file (default: none)")
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.bind, args.port), ApiHandler)
    srv.daemon_threads = True
    srv.log = open(args.log, "a") if args.log else None
    print("api_server listening on %s:%d" % (args.bind, args.port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
