#!/usr/bin/env python3
"""check-traffic.py -- hold the shop API's real traffic against a spec, without specter or tshark.

USAGE
    specs/check-traffic.py [--spec FILE] [--no-replay] [--no-tsv] [--loose] [-v]

    --spec FILE   the spec to check (default specs/shop-api.full.yaml; OpenAPI 3.0 YAML or
                  3.1 JSON/YAML, local $refs)
    --no-replay   skip the replay (below), check only the captures' request TSVs
    --no-tsv      skip the request TSVs
    --loose       do not add additionalProperties: false to object schemas (by default every
                  object schema that lists properties is closed, so a field the spec does not
                  declare is an error)
    -v            print every failure, not only the first 5 per kind and operation

WHAT IT CHECKS
  1. The captures as recorded: captures/shop-api-{a,b}.requests.tsv are tshark's view of
     captures/shop-api-{a,b}.pcap (method, target, status, content type of every exchange).
     Each request must match a documented operation (path template and method, under the
     spec's server base path), its status must be documented for that operation, its
     response content type documented for that status, and its query parameters documented.
  2. The bodies: the TSVs carry no bodies, so the generator that made the captures is run
     again, in-process (the Flask app and `shop_api.py client` with the seeds and counts of
     captures/record.sh: seed 1 x 2500, seed 2 x 1500, each in a fresh process like the
     recording). A WSGI wrapper records every exchange, which gets the checks of 1 plus:
     the JSON response body validates against the documented schema (jsonschema, with
     format checks), the documented response headers are present, path parameters have the
     documented type/format, and on 2xx exchanges every required query parameter is present.
     The replay is the same program with the same seeds; only wall-clock values (timestamps
     of new objects, JWTs) differ from the recording. Its per-operation status counts are
     printed next to the captures' for comparison.

Exit status 0 when nothing failed, 1 otherwise. Needs PyYAML, jsonschema, flask (for the
replay). Prints a summary line `check-traffic: N exchanges, N failed`.
"""
import argparse
import copy
import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from urllib.parse import parse_qsl

import yaml
from jsonschema import Draft202012Validator, FormatChecker

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CAPTURES = os.path.join(ROOT, "captures")
RUNS = [("shop-api-a", 1, 2500), ("shop-api-b", 2, 1500)]   # as in captures/record.sh
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ---------------------------------------------------------------------------- spec
def load_spec(path):
    with open(path) as f:
        text = f.read()
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


def to_json_schema(node, strict, oas30):
    """OpenAPI schema object -> JSON Schema 2020-12 (nullable, x-*, refs to $defs)."""
    if isinstance(node, list):
        return [to_json_schema(x, strict, oas30) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k.startswith("x-") or k in ("nullable", "example", "discriminator", "xml", "externalDocs", "readOnly"):
            continue
        if k == "$ref":
            out[k] = v.replace("#/components/schemas/", "#/$defs/").replace("#/definitions/", "#/$defs/")
        elif k in ("properties", "$defs", "patternProperties"):
            out[k] = {name: to_json_schema(s, strict, oas30) for name, s in v.items()}
        else:
            out[k] = to_json_schema(v, strict, oas30)
    if oas30 and (node.get("nullable") is True or node.get("x-nullable") is True):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    if strict and "properties" in out and "additionalProperties" not in out and "$ref" not in out:
        out["additionalProperties"] = False
    return out


class Spec:
    def __init__(self, path, strict=True):
        self.doc = load_spec(path)
        self.swagger2 = str(self.doc.get("swagger", "")) == "2.0"
        # 3.0 `nullable` and 2.0 `x-nullable` become type arrays; 3.1 has them already
        self.oas30 = str(self.doc.get("openapi", "")).startswith("3.0") or self.swagger2
        if self.swagger2:
            self.base = (self.doc.get("basePath") or "").rstrip("/")
            schemas = self.doc.get("definitions", {})
        else:
            servers = self.doc.get("servers") or [{"url": "/"}]
            self.base = re.sub(r"^[a-z]+://[^/]+", "", servers[0]["url"]).rstrip("/")
            schemas = self.doc.get("components", {}).get("schemas", {})
        self.defs = {k: to_json_schema(v, strict, self.oas30) for k, v in schemas.items()}
        self.strict = strict
        self.ops = []     # (method, template, regex, concreteness, op, path_item)
        for tpl, item in self.doc.get("paths", {}).items():
            for m in METHODS:
                if m in item:
                    rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(self.base + tpl)) + "$")
                    concrete = [not s.startswith("{") for s in tpl.strip("/").split("/")]
                    self.ops.append((m.upper(), tpl, rx, concrete, item[m], item))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = self.doc
            for p in parts:
                node = node[p]
        return node

    def match(self, method, path):
        """Documented operation for method + path, OpenAPI precedence (concrete segments first)."""
        cands = []
        for m, tpl, rx, concrete, op, item in self.ops:
            mm = rx.match(path)
            if mm:
                cands.append((concrete, m == method, tpl, op, item, mm.groups()))
        if not cands:
            return None, None
        best = max(c[0] for c in cands)   # lexicographic: concrete earlier segments win
        cands = [c for c in cands if c[0] == best]
        for concrete, same, tpl, op, item, groups in cands:
            if same:
                return (method, tpl, op, item, groups), None
        return None, "method %s not documented on %s" % (method, cands[0][2])

    def content(self, op, resp):
        """Response media types -> {"schema": ...} (2.0: the op's or the global produces)."""
        if not self.swagger2:
            return resp.get("content", {})
        if "schema" not in resp:
            return {}
        return {ct: {"schema": resp["schema"]} for ct in op.get("produces", self.doc.get("produces", []))}

    def param_schema(self, p):
        return self.deref(p.get("schema", {})) if not self.swagger2 else p

    def params(self, op, item):
        out = {}
        for p in list(item.get("parameters", [])) + list(op.get("parameters", [])):
            p = self.deref(p)
            out[(p["in"], p["name"])] = p
        return out

    def validator(self, schema):
        root = dict(to_json_schema(schema, self.strict, self.oas30))
        root["$defs"] = self.defs
        return Draft202012Validator(root, format_checker=FormatChecker())


# ---------------------------------------------------------------------------- exchanges
def tsv_exchanges():
    for name, _, _ in RUNS:
        with open(os.path.join(CAPTURES, name + ".requests.tsv")) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                yield {"source": name, "method": row["method"], "target": row["uri"],
                       "status": int(row["status"]) if row["status"].isdigit() else None,
                       "content_type": row["content_type"] or None}


REPLAY_CHILD = r"""
import io, json, sys, threading, tempfile
sys.path.insert(0, sys.argv[1])
import shop_api
out = open(sys.argv[4], "w")
lock = threading.Lock()

class Recorder:
    def __init__(self, app):
        self.app = app
    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        seen = {}
        def sr(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)
        data = b"".join(self.app(environ, sr))
        target = environ["PATH_INFO"] + ("?" + environ["QUERY_STRING"] if environ["QUERY_STRING"] else "")
        creds = [h for h in ("HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_X_API_KEY") if environ.get(h)]
        rec = {"method": environ["REQUEST_METHOD"], "target": target, "credentials": creds,
               "status": int(seen["status"].split()[0]),
               "headers": [[k, v] for k, v in seen["headers"]],
               "body": data.decode("utf-8", "replace")}
        with lock:
            out.write(json.dumps(rec) + "\n")
        return [data]

srv = shop_api.make_server(0, Recorder(shop_api.app.wsgi_app))
shop_api.KeepAliveHandler.log_request = lambda *a, **k: None
threading.Thread(target=srv.serve_forever, daemon=True).start()
with tempfile.NamedTemporaryFile(suffix=".secrets") as tf:
    rc = shop_api.client_main(srv.server_address[1], int(sys.argv[2]), int(sys.argv[3]), tf.name)
srv.shutdown()
out.close()
sys.exit(rc)
"""


def replay_exchanges(tmpdir):
    for name, seed, n in RUNS:
        path = os.path.join(tmpdir, "%s.replay.jsonl" % name)
        p = subprocess.run([sys.executable, "-c", REPLAY_CHILD, CAPTURES, str(seed), str(n), path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr[-3000:])
            raise SystemExit("check-traffic: the replay of %s (seed %d) failed" % (name, seed))
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                hdrs = {k.lower(): v for k, v in rec["headers"]}
                rec.update(source=name + " (replay)", headers=hdrs,
                           content_type=hdrs.get("content-type"))
                yield rec


# ---------------------------------------------------------------------------- checks
INT_RE = re.compile(r"^-?[0-9]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def value_ok(schema, value):
    t, fmt = schema.get("type"), schema.get("format")
    if isinstance(t, list):
        t = [x for x in t if x != "null"][0]
    if t == "integer":
        return bool(INT_RE.match(value))
    if fmt == "uuid":
        return bool(UUID_RE.match(value))
    if fmt == "date":
        return bool(DATE_RE.match(value))
    if "pattern" in schema:
        return re.search(schema["pattern"], value) is not None
    return True


def guess_template(path):
    """/api/v1/sessions/AbC...x -> /api/v1/sessions/{}: ids are segments with a digit or long."""
    return "/".join("{}" if re.search(r"[0-9]", seg) and not re.fullmatch(r"v[0-9]+", seg) or len(seg) >= 20
                    else seg for seg in path.split("/"))


def finding_of(kind, opkey, detail):
    """A failure as a finding row (kind, method, path, subject), or None."""
    method, _, path = opkey.partition(" ")
    if kind == "undocumented-operation":
        return ("undocumented", method, path, "-")
    if kind == "undocumented-status":
        return ("drift", method, path, detail)
    if kind in ("undocumented-query-parameter", "required-query-parameter-missing"):
        return ("drift", method, path, detail)
    if kind == "response-body":
        where, _, msg = detail.partition(" ")[2].partition(": ")
        m = re.match(r"Additional properties are not allowed \('([^']+)' was unexpected", msg)
        if m:
            return ("drift", method, path, (where + "." + m.group(1)) if where != "$" else "$." + m.group(1))
        if " is not of type " in msg:
            return ("drift", method, path, where)
        return ("drift", method, path, where + " (" + msg[:40] + ")")
    return None


def check(spec, ex, validators, fails):
    """Append (kind, op, detail) for every problem with exchange ex; return the op key."""
    path, _, query = ex["target"].partition("?")
    hit, why = spec.match(ex["method"], path)
    if hit is None:
        fails.append(("undocumented-operation", "%s %s" % (ex["method"], guess_template(path)),
                      why or "no path template matches"))
        return None
    method, tpl, op, item, groups = hit
    key = "%s %s" % (method, spec.base + tpl)
    params = spec.params(op, item)
    st = ex["status"]
    ok2xx = st is not None and 200 <= st < 300
    # query parameters
    q = parse_qsl(query, keep_blank_values=True)
    for name, value in q:
        p = params.get(("query", name))
        if p is None:
            fails.append(("undocumented-query-parameter", key, name))
        elif ok2xx and not value_ok(spec.param_schema(p), value):
            fails.append(("query-parameter-type", key, "%s=%s" % (name, value)))
    if ok2xx:
        names = {n for n, _ in q}
        for (loc, name), p in params.items():
            if loc == "query" and p.get("required") and name not in names:
                fails.append(("required-query-parameter-missing", key, name))
        # path parameters
        pnames = re.findall(r"\{([^}]+)\}", tpl)
        for name, value in zip(pnames, groups):
            p = params.get(("path", name))
            if p is None:
                fails.append(("undocumented-path-parameter", key, name))
            elif not value_ok(spec.param_schema(p), value):
                fails.append(("path-parameter-type", key, "%s=%s" % (name, value)))
    # status
    if st is None:
        return key
    responses = op.get("responses", {})
    resp = responses.get(str(st)) or responses.get("%dXX" % (st // 100)) or responses.get("default")
    if resp is None:
        fails.append(("undocumented-status", key, str(st)))
        return key
    resp = spec.deref(resp)
    content = spec.content(op, resp)
    ctype = (ex.get("content_type") or "").split(";")[0].strip().lower() or None
    if st in (204, 304) and not content:
        pass   # no body: the app's 204s carry Flask's default text/html Content-Type, meaningless
    elif ctype is None:
        if content and ex.get("body"):
            fails.append(("missing-content-type", key, str(st)))
    elif ctype not in content:
        fails.append(("undocumented-content-type", key, "%d %s" % (st, ctype)))
    # headers and body (replay only)
    if "headers" in ex:
        for hname in resp.get("headers", {}):
            if hname.lower() not in ex["headers"]:
                fails.append(("documented-header-missing", key, "%d %s" % (st, hname)))
        if ctype == "application/json" and ctype in content:
            try:
                doc = json.loads(ex["body"])
            except ValueError:
                fails.append(("invalid-json", key, str(st)))
                return key
            vkey = (key, st)
            if vkey not in validators:
                validators[vkey] = spec.validator(content[ctype].get("schema", {}))
            for e in validators[vkey].iter_errors(doc):
                where = "$" + "".join("[]" if isinstance(x, int) else "." + str(x) for x in e.absolute_path)
                fails.append(("response-body", key, "%d %s: %s" % (st, where, e.message[:160])))
    return key


def read_expected(path):
    rows = set()
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows.add((row["kind"], row["method"], row["path"], row["subject"]))
    return rows


def strip_names(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


def compare(expected, findings, spec, info):
    """Each expected row against what this script can see; returns the number of mismatches."""
    bad = 0
    found_undoc = {(m, strip_names(p)) for k, m, p, s in findings if k == "undocumented"}
    drift = {f for f in findings if f[0] in ("drift", "unobserved")}
    want_drift = {e for e in expected if e[0] in ("drift", "unobserved")}
    for e in sorted(expected):
        kind, method, path, subject = e
        key = "%s %s" % (method, path)
        if kind in ("drift", "unobserved"):
            ok, how = e in drift, "seen" if e in drift else "NOT seen"
        elif kind == "pii":
            ok = ("drift", method, path, subject) in drift
            how = "undeclared field seen in responses" if ok else "field NOT seen undeclared"
        elif kind == "shadow":
            ok, how = (method, strip_names(path)) in found_undoc, "undocumented and called"
        elif kind == "zombie":
            i = info.get(key)
            if i is None:   # not documented: superseded by a documented newer version?
                newer = [o for o in info if re.sub(r"/v[0-9]+/", "/v*/", o) == re.sub(r"/v[0-9]+/", "/v*/", key) and o != key]
                ok = (method, strip_names(path)) in found_undoc and bool(newer)
                how = "undocumented, called, newer version documented: %s" % ",".join(newer)
            else:
                ok = i["calls"] > 0 and (i["deprecated"] or i["sunset"] > 0)
                how = "called %d times; deprecated in spec: %s; responses with Deprecation+Sunset: %d" % (
                    i["calls"], i["deprecated"], i["sunset"])
        elif kind == "posture":
            i = info.get(key, {})
            ok = bool(i.get("secured")) and i.get("open2xx", 0) > 0
            how = "documented security %s; 2xx without credentials: %d" % (i.get("secured"), i.get("open2xx", 0))
        else:
            ok, how = False, "unknown kind"
        bad += not ok
        print("  %s %s\t%s" % ("ok  " if ok else "MISS", "\t".join(e), how))
    # An undeclared field that carries personal data is one gap, expected as pii only.
    pii_fields = {("drift",) + e[1:] for e in expected if e[0] == "pii"}
    for f in sorted(drift - want_drift - pii_fields):
        bad += 1
        print("  EXTRA %s" % "\t".join(f))
    want_undoc = {(m, strip_names(p)) for k, m, p, s in expected if k in ("shadow", "zombie") and "%s %s" % (m, p) not in info}
    for m, p in sorted(found_undoc - want_undoc):
        bad += 1
        print("  EXTRA undocumented\t%s\t%s" % (m, p))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=os.path.join(HERE, "shop-api.full.yaml"))
    ap.add_argument("--expect", metavar="TSV", help="compare the findings with this expected file")
    ap.add_argument("--no-replay", action="store_true")
    ap.add_argument("--no-tsv", action="store_true")
    ap.add_argument("--loose", action="store_true")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    spec = Spec(a.spec, strict=not a.loose)
    validators = {}
    total_fail = total = 0
    per_source_status = defaultdict(lambda: defaultdict(Counter))
    sources = []
    if not a.no_tsv:
        sources.append(("captures (tshark TSV)", tsv_exchanges))
    if not a.no_replay:
        import tempfile
        tmp = tempfile.mkdtemp(prefix="check-traffic-")
        sources.append(("replay (bodies)", lambda: replay_exchanges(tmp)))
    all_fails = Counter()
    examples = defaultdict(list)
    findings = set()
    info = {}
    for m, t, _rx, _c, o, _item in spec.ops:
        info["%s %s" % (m, spec.base + t)] = {"deprecated": bool(o.get("deprecated")), "calls": 0, "sunset": 0,
                                             "secured": bool(o.get("security", spec.doc.get("security"))),
                                             "open2xx": 0}
    for label, gen in sources:
        n = bad = 0
        for ex in gen():
            fails = []
            key = check(spec, ex, validators, fails)
            n += 1
            per_source_status[label][key or "(undocumented)"][ex["status"]] += 1
            if key in info:
                info[key]["calls"] += 1
                h = ex.get("headers", {})
                if "deprecation" in h and "sunset" in h:
                    info[key]["sunset"] += 1
                if "credentials" in ex and not ex["credentials"] and ex["status"] and 200 <= ex["status"] < 300:
                    info[key]["open2xx"] += 1
            if fails:
                bad += 1
                for kind, opkey, detail in fails:
                    all_fails[(label, kind, opkey)] += 1
                    f = finding_of(kind, opkey, detail)
                    if f:
                        findings.add(f)
                    if a.v or len(examples[(label, kind, opkey)]) < 3:
                        examples[(label, kind, opkey)].append("%s %s -> %s: %s" % (
                            ex["method"], ex["target"][:100], ex["status"], detail))
        print("check-traffic: %s: %d exchanges, %d with a problem" % (label, n, bad))
        total += n
        total_fail += bad
    for (label, kind, opkey), c in sorted(all_fails.items()):
        print("  FAIL [%s] %s %s: %d" % (label, kind, opkey, c))
        for e in examples[(label, kind, opkey)]:
            print("      " + e)
    labels = [l for l, _ in sources]
    if len(labels) == 2:
        print("per operation, status counts: captures | replay")
        keys = sorted(set(per_source_status[labels[0]]) | set(per_source_status[labels[1]]))
        for k in keys:
            fmt = lambda c: " ".join("%s=%d" % kv for kv in sorted(c.items(), key=lambda kv: str(kv[0])))
            print("  %-52s %-34s | %s" % (k, fmt(per_source_status[labels[0]][k]), fmt(per_source_status[labels[1]][k])))
    never = sorted(k for k, i in info.items() if i["calls"] == 0)
    for k in never:
        m, _, p = k.partition(" ")
        findings.add(("unobserved", m, p, "-"))
    if never:
        print("documented but never seen: " + ", ".join(never))
    print("findings this script can see (kind, method, path, subject):")
    for f in sorted(findings):
        print("  " + "\t".join(f))
    rc = 1 if total_fail or never else 0
    if a.expect:
        print("against %s:" % os.path.relpath(a.expect, ROOT))
        bad = compare(read_expected(a.expect), findings, spec, info)
        print("check-traffic: expected findings: %d mismatches" % bad)
        rc = 1 if bad else 0
    print("check-traffic: %d exchanges, %d failed (%s; %d operations documented, %d seen)"
          % (total, total_fail, os.path.relpath(a.spec, ROOT), len(info), len(info) - len(never)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
