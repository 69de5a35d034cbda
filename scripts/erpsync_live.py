"""Live helpers shared by `make demo` (scripts/demo) and the end-to-end tests (tests/e2e/):
start the sandboxes and erpsync on free loopback ports, talk to the Salesforce sandbox (REST),
the SAP sandbox (OData), Tryton (JSON-RPC) and erpsync's own HTTP side (/healthz, /metrics,
/api/). Python standard library only (Debian's python3), so `make demo` needs nothing more.

Every wait has a deadline and fails with a message naming what it waited for; every process
started here is stopped by Procs.stop_all() (by its pid, never by name).
"""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class LiveError(Exception):
    """A step of the live run failed; the message says which and why."""


class Fatal(LiveError):
    """A failure that waiting cannot cure (a process died): wait_until() stops at once."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout, every=0.2):
    """Calls fn() until it returns a true value (returned), or raises LiveError after timeout."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Fatal:
            raise
        except (OSError, LiveError, ValueError) as e:
            last = e
        if time.monotonic() > end:
            raise LiveError("timed out after %ds waiting for %s%s" %
                            (timeout, what, " (last error: %s)" % last if last else ""))
        time.sleep(every)


def http(method, url, body=None, headers=None, timeout=60, raw=False):
    """One request. Returns (status, parsed JSON or text). Never raises on HTTP errors."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    text = text.decode("utf-8", "replace")
    if raw:
        return status, text
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class Procs:
    """Background processes started by this run, stopped together at the end."""

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []  # (name, Popen, log path)

    def start(self, name, argv, env=None, stdout_file=None):
        log = os.path.join(self.dir, name + ".log")
        out = open(stdout_file or log, "ab")
        err = out if not stdout_file else open(log, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        self.procs.append((name, p, log))
        return p

    def forget(self, p):
        """p ended on purpose (a test killed it): no longer watched or stopped."""
        self.procs = [x for x in self.procs if x[1] is not p]

    def check_alive(self):
        for name, p, log in self.procs:
            if p.poll() is not None:
                raise Fatal("%s exited with status %s; the end of %s:\n%s" %
                                (name, p.returncode, log, tail(log)))

    def pids(self):
        return [(name, p.pid) for name, p, _ in self.procs if p.poll() is None]

    def stop(self, p, sig=signal.SIGTERM, timeout=20):
        if p.poll() is not None:
            return p.returncode
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(5)

    def stop_all(self):
        for _, p, _ in reversed(self.procs):
            self.stop(p)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def sandbox_url(stdout_path, timeout=120):
    """The URL an erpsync-sandbox printed on its first line."""
    def read():
        with open(stdout_path) as f:
            m = re.search(r"listening on (http://\S+)", f.readline())
            return m.group(1) if m else None
    return wait_until("the sandbox to listen (%s)" % stdout_path, read, timeout, 0.1)


def start_sandbox(procs, sandbox_bin, kind, args, env=None, timeout=180):
    """Starts `erpsync-sandbox KIND --listen 127.0.0.1:0 ARGS`; returns its base URL."""
    out = os.path.join(procs.dir, kind + ".out")
    open(out, "w").close()
    p = procs.start("sandbox-" + kind,
                    [sandbox_bin, kind, "--listen", "127.0.0.1:0"] + list(args),
                    env=env, stdout_file=out)

    def up():
        if p.poll() is not None:
            raise Fatal("erpsync-sandbox %s exited (%s):\n%s" %
                            (kind, p.returncode, tail(os.path.join(procs.dir, "sandbox-" + kind + ".log"))))
        with open(out) as f:
            m = re.search(r"listening on (http://\S+)", f.readline())
            return m.group(1) if m else None
    return wait_until("erpsync-sandbox %s to listen" % kind, up, timeout, 0.1)


def local_config(example, path, sf_url=None, sap_url=None, tryton_url=None, tryton_db=None,
                 listen=None, store=None, extra=None):
    """Copies an example configuration with the sandboxes' addresses put in; the file stays
    the example otherwise (comments included). extra: list of (regex, replacement)."""
    with open(example) as f:
        text = f.read()
    subs = []
    if sf_url:
        subs.append((r"url: http://127\.0\.0\.1:8701", "url: " + sf_url))
    if sap_url:
        subs.append((r"url: http://127\.0\.0\.1:8702", "url: " + sap_url))
    if tryton_url:
        subs.append((r"url: http://127\.0\.0\.1:8123", "url: " + tryton_url.rstrip("/")))
    if tryton_db:
        subs.append((r"database: erp\b", "database: " + tryton_db))
    if listen:
        subs.append((r"listen: 127\.0\.0\.1:8089", "listen: " + listen))
    if store:
        subs.append((r"^store: .*$", "store: " + store))
    subs += list(extra or [])
    for rx, rep in subs:
        text, n = re.subn(rx, lambda m: m.expand(rep), text, flags=re.M)
        if n == 0:
            raise LiveError("%s: nothing matches %r" % (example, rx))
    with open(path, "w") as f:
        f.write(text)
    return path


def only_flows(config_path, out_path, keep, listen="127.0.0.1:0"):
    """A copy of config_path where every flow not in keep is disabled and the server listens
    elsewhere (for a `run --once` next to a running daemon on the same journal)."""
    lines = open(config_path).read().split("\n")
    out, in_flows, cur = [], False, None
    for ln in lines:
        if re.match(r"^flows:\s*$", ln):
            in_flows = True
        elif re.match(r"^\S", ln):
            in_flows = False
        if in_flows and re.match(r"^    enabled:", ln):
            continue
        out.append(ln)
        m = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", ln)
        if in_flows and m:
            cur = m.group(1)
            if cur not in keep:
                out.append("    enabled: false")
    text = "\n".join(out)
    text = re.sub(r"listen: 127\.0\.0\.1:\d+", "listen: " + listen, text)
    with open(out_path, "w") as f:
        f.write(text)
    return out_path


class Salesforce:
    """The Salesforce sandbox's REST API, as a client of a real org would use it."""

    def __init__(self, url, version="60.0", client_id="demo", secret="demo"):
        self.url = url.rstrip("/")
        self.v = "/services/data/v" + version
        st, tok = http("POST", self.url + "/services/oauth2/token",
                       urllib.parse.urlencode({"grant_type": "client_credentials",
                                               "client_id": client_id,
                                               "client_secret": secret}),
                       {"Content-Type": "application/x-www-form-urlencoded"})
        if st != 200:
            raise LiveError("Salesforce token: %s %s" % (st, tok))
        self.h = {"Authorization": "Bearer " + tok["access_token"]}

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        st, j = http(method, self.url + self.v + path, body, self.h)
        if st not in ok:
            raise LiveError("Salesforce %s %s: %s %s" % (method, path, st, str(j)[:500]))
        return j

    def create_many(self, sobject, records):
        """Creates records 200 per call (sObject Collections); returns their ids in order."""
        ids = []
        for i in range(0, len(records), 200):
            chunk = [dict(r, attributes={"type": sobject}) for r in records[i:i + 200]]
            res = self.call("POST", "/composite/sobjects", {"allOrNone": True, "records": chunk})
            for r in res:
                if not r.get("success"):
                    raise LiveError("create %s: %s" % (sobject, r))
                ids.append(r["id"])
        return ids

    def update_many(self, sobject, updates):
        """updates: list of (id, {field: value}), 200 per call."""
        for i in range(0, len(updates), 200):
            chunk = [dict(f, Id=rid, attributes={"type": sobject}) for rid, f in updates[i:i + 200]]
            res = self.call("PATCH", "/composite/sobjects", {"allOrNone": True, "records": chunk})
            for r in res:
                if not r.get("success"):
                    raise LiveError("update %s: %s" % (sobject, r))

    def query(self, soql):
        j = self.call("GET", "/query?q=" + urllib.parse.quote(soql))
        rows = list(j["records"])
        while not j.get("done") and j.get("nextRecordsUrl"):
            st, j = http("GET", self.url + j["nextRecordsUrl"], None, self.h)
            if st != 200:
                raise LiveError("Salesforce query page: %s %s" % (st, str(j)[:300]))
            rows += j["records"]
        return rows

    def count(self, soql_from_where):
        return self.call("GET", "/query?q=" + urllib.parse.quote(
            "SELECT COUNT() FROM " + soql_from_where))["totalSize"]


class Sap:
    """The SAP sandbox's OData v2 services (reads)."""

    def __init__(self, url, user="demo", password="demo"):
        self.url = url.rstrip("/") + "/sap/opu/odata/sap/"
        self.h = {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode(), "Accept": "application/json"}

    def get(self, service, path):
        st, j = http("GET", self.url + service + "/" + path, None, self.h)
        if st != 200:
            raise LiveError("SAP GET %s/%s: %s %s" % (service, path, st, str(j)[:300]))
        return j

    def feed(self, service, path):
        """Every entity of a feed, following __next."""
        rows = []
        j = self.get(service, path)
        while True:
            d = j["d"]
            rows += d["results"] if isinstance(d, dict) else d
            nxt = d.get("__next") if isinstance(d, dict) else None
            if not nxt:
                return rows
            st, j = http("GET", nxt, None, self.h)
            if st != 200:
                raise LiveError("SAP next page: %s" % st)

    def count(self, service, set_and_filter):
        st, text = http("GET", self.url + service + "/" + set_and_filter, None, self.h, raw=True)
        if st != 200:
            raise LiveError("SAP count %s: %s %s" % (set_and_filter, st, text[:200]))
        return int(text.strip())


class Tryton:
    """Tryton's JSON-RPC (as the admin user, to check what erpsync wrote)."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/") + "/" + db + "/"
        r = self._call("common.db.login", [login, {"password": password}])
        self.session = base64.b64encode(("%s:%s:%s" % (login, r[0], r[1])).encode()).decode()

    def _call(self, method, params, session=None):
        h = {"Content-Type": "application/json"}
        if session:
            h["Authorization"] = "Session " + session
        st, j = http("POST", self.url, {"id": 1, "method": method, "params": params}, h, timeout=120)
        if st != 200 or not isinstance(j, dict) or "error" in j and j["error"]:
            raise LiveError("Tryton %s: %s %s" % (method, st, str(j)[:400]))
        return j["result"]

    def search_read(self, model, domain, fields, limit=None):
        return self._call("model.%s.search_read" % model,
                          [domain, 0, limit, None, fields, {}], self.session)

    def search_count(self, model, domain):
        return self._call("model.%s.search_count" % model, [domain, {}], self.session)


class Erpsync:
    """erpsync's own HTTP side and command line."""

    def __init__(self, binary, config, base, token):
        self.bin, self.config, self.base, self.token = binary, config, base, token

    def api(self, path, method="GET", body=None):
        st, j = http(method, self.base + "/api" + path, body,
                     {"Authorization": "Bearer " + self.token})
        if st != 200:
            raise LiveError("erpsync %s /api%s: %s %s" % (method, path, st, str(j)[:300]))
        return j

    def metrics(self):
        st, text = http("GET", self.base + "/metrics", raw=True)
        if st != 200:
            raise LiveError("/metrics: %s" % st)
        return text

    def health(self):
        return http("GET", self.base + "/healthz")

    def status(self, config=None):
        """`erpsync status --json`: {flow: states}."""
        out = subprocess.run([self.bin, "status", "--json", config or self.config],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise LiveError("erpsync status: %s" % out.stderr.strip()[-500:])
        return {f["flow"]: f for f in json.loads(out.stdout)}


def metric(text, name, **labels):
    """The value of series name{labels} in Prometheus text (0 when absent)."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for ln in text.splitlines():
        if ln.startswith("#") or not ln.startswith(name):
            continue
        m = re.match(r'^([a-zA-Z_:]+)(?:\{([^}]*)\})? (\S+)$', ln)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return 0.0


# Account addresses as each country writes them, with the parts SAP should receive:
# (country, ISO, city, postal pattern, street block, street, house number, supplement).
# {n} is a house number, {f} a small number (floor, unit).
ADDRESS_STYLES = [
    ("Germany", "DE", "Berlin", "1####", "Friedrichstraße {n}\n{f}. OG", "Friedrichstraße", "{n}", "{f}. OG"),
    ("France", "FR", "Lyon", "69###", "{n} rue de la République\nBâtiment B", "rue de la République", "{n}", "Bâtiment B"),
    ("United States", "US", "Austin", "787##", "{n} Congress Ave\nSuite {f}00", "Congress Ave", "{n}", "Suite {f}00"),
    ("United Kingdom", "GB", "London", "W1U {f}AB", "Flat {f}\n{n} Baker Street", "Baker Street", "{n}", "Flat {f}"),
    ("Japan", "JP", "Tokyo", "100-####", "1-{f}-{n} Marunouchi\n{f}F", "Marunouchi", "1-{f}-{n}", "{f}F"),
    ("Italy", "IT", "Torino", "101##", "Via Garibaldi {n}\nScala B", "Via Garibaldi", "{n}", "Scala B"),
    ("Spain", "ES", "Madrid", "280##", "Calle de Alcalá, {n}\n{f}º Dcha.", "Calle de Alcalá", "{n}", "{f}º Dcha."),
    ("Netherlands", "NL", "Amsterdam", "10## AB", "Keizersgracht {n}\n{f}e verdieping", "Keizersgracht", "{n}", "{f}e verdieping"),
    ("Brazil", "BR", "Recife", "51###-###", "Av. Boa Viagem, {n}\nConj. {f}01", "Av. Boa Viagem", "{n}", "Conj. {f}01"),
    ("Switzerland", "CH", "Zürich", "80##", "Bahnhofstrasse {n}", "Bahnhofstrasse", "{n}", None),
    ("Austria", "AT", "Wien", "1###", "Mariahilfer Straße {n}\nStiege {f}, Top 7", "Mariahilfer Straße", "{n}", "Stiege {f}, Top 7"),
    ("Canada", "CA", "Toronto", "M5H #A#", "{n} King Street West\nSuite {f}700", "King Street West", "{n}", "Suite {f}700"),
    ("Australia", "AU", "Brisbane", "4###", "Unit {f}\n{n} Queen Street", "Queen Street", "{n}", "Unit {f}"),
    ("India", "IN", "Bengaluru", "560###", "{n} MG Road\nFloor {f}, Tower B", "MG Road", "{n}", "Floor {f}, Tower B"),
    ("Poland", "PL", "Warszawa", "00-###", "Ulica Marszałkowska {n}\nlok. {f}", "Ulica Marszałkowska", "{n}", "lok. {f}"),
    ("Belgium", "BE", "Bruxelles", "10##", "Rue de la Loi {n}\nbte {f}", "Rue de la Loi", "{n}", "bte {f}"),
]


def make_accounts(count, tag, first=0):
    """count new Accounts with varied addresses. Returns (records, expected) where expected[i]
    holds the address parts the ERP should end up with (street, number, supplement, city,
    postal code, ISO country, country name)."""
    recs, exp = [], []
    for i in range(first, first + count):
        st = ADDRESS_STYLES[i % len(ADDRESS_STYLES)]
        n, f = str(1 + (i * 7) % 180), str(1 + i % 8)
        fill = lambda t: t.replace("{n}", n).replace("{f}", f) if t else None
        digits = iter(("%09d" % (i * 7919 + 4711))[::-1])
        pc = "".join(next(digits) if c == "#" else c for c in fill(st[3]))
        recs.append({"Name": "%s Account %05d %s" % (tag, i, st[1]), "BillingStreet": fill(st[4]),
                     "BillingCity": st[2], "BillingPostalCode": pc, "BillingCountry": st[0],
                     "Payment_Terms__c": "Net 30" if i % 3 else "Net 60"})
        exp.append({"street": fill(st[5]), "number": fill(st[6]), "supplement": fill(st[7]),
                    "city": st[2], "postal": pc, "iso": st[1], "country": st[0]})
    return recs, exp



def moved_accounts(indices, tag):
    """Edits for the accounts make_accounts() made at indices: each one renamed and moved to
    another country, so that the change event carries every mapped field. Returns
    (edits {index: fields}, expected {index: address parts})."""
    edits, exp = {}, {}
    for i in indices:
        rec, e = make_accounts(1, tag, first=i + 5)
        edits[i], exp[i] = rec[0], e[0]
    return edits, exp


def say(*a):
    print(*a, flush=True)


def die(msg):
    print("\nFAILED: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)
