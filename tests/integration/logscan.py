"""Reading berichtd's logfmt lines, and the privacy check of its logs.

parse_line(line)  -> {key: value} of one logfmt line (common/log.h), {} if it is not one
records(text)     -> the parsed lines of a log
Secrets           -> what the suite used that must never be logged: BSNs,
                     e-mail addresses, tokens, verification codes
scan_text / scan_files -> findings: a registered secret, or any valid BSN or
                     e-mail address (a generic scan, for what nobody registered)
daemon_logs(dirs) -> every daemon log file of a run

The integration suite registers every secret it makes or sends (harness.py)
and conftest.py's pytest_sessionfinish fails the run if any daemon log of it
holds one (docs/operations.md, "Logs").
"""
import re
import threading
from pathlib import Path

# ---------------------------------------------------------------- logfmt

_ESC = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def parse_line(line):
    """{key: value} of one logfmt line; a leading sd-daemon "<N>" is skipped.
    {} for a line that is not logfmt (ASan output, the harness's markers)."""
    s = line.rstrip("\n")
    if s.startswith("<") and ">" in s[:4]:
        s = s[s.index(">") + 1:]
    out = {}
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] == " ":
            i += 1
        j = i
        while j < n and s[j] not in "= ":
            j += 1
        if j >= n or s[j] != "=" or j == i:
            return out if out else {}
        key = s[i:j]
        j += 1
        if j < n and s[j] == '"':
            j += 1
            val = []
            while j < n and s[j] != '"':
                if s[j] == "\\" and j + 1 < n:
                    c = s[j + 1]
                    if c == "x" and j + 3 < n:
                        val.append(chr(int(s[j + 2:j + 4], 16)))
                        j += 4
                        continue
                    val.append(_ESC.get(c, c))
                    j += 2
                    continue
                val.append(s[j])
                j += 1
            out[key] = "".join(val)
            i = j + 1
        else:
            k = j
            while k < n and s[k] != " ":
                k += 1
            out[key] = s[j:k]
            i = k
    return out if "ts" in out and "level" in out else {}


def records(text):
    return [r for r in (parse_line(l) for l in text.splitlines()) if r]


# --------------------------------------------------------------- secrets

def bsn_valid(s):
    """common/bsn.c's rule: 9 digits, not all zero, the eleven-check."""
    if len(s) != 9 or not s.isdigit() or s == "000000000":
        return False
    d = [int(c) for c in s]
    return (sum((9 - i) * d[i] for i in range(8)) - d[8]) % 11 == 0


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# nine digits that are not part of a longer word, hex string or UUID group
BSN_RE = re.compile(r"(?<![0-9A-Za-z-])\d{9}(?![0-9A-Za-z-])")
# the daemon's own addresses (sender, VERP bounces): no citizen's
OWN_DOMAINS = ("berichtenbox.example",)
# fields whose numbers are counts and durations, never a code
NUMERIC_KEYS = {"bytes", "status", "duration_ms", "down_ms", "failures", "deferred"}


class Secrets:
    """A registry of what the suite used; thread-safe, de-duplicated."""

    KINDS = ("bsn", "email", "token", "code")

    def __init__(self):
        self._lock = threading.Lock()
        self.items = {k: set() for k in self.KINDS}

    def add(self, kind, value):
        if not isinstance(value, str) or len(value) < 6:
            return  # too short to mean anything (and to search for)
        if kind == "email":
            if value.lower().endswith(OWN_DOMAINS):
                return
            value = value.lower()
        with self._lock:
            self.items[kind].add(value)

    def add_from(self, obj):
        """Registers what a request body holds: BSNs, addresses, codes."""
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and k.lower() in ("code", "verificatiecode"):
                    self.add("code", v)
                self.add_from(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                self.add_from(v)
        elif isinstance(obj, str):
            if bsn_valid(obj):
                self.add("bsn", obj)
            for m in EMAIL_RE.findall(obj):
                self.add("email", m)
            for m in BSN_RE.findall(obj):
                if bsn_valid(m):
                    self.add("bsn", m)

    def snapshot(self):
        with self._lock:
            return {k: set(v) for k, v in self.items.items()}


def _digits_re(values):
    if not values:
        return None
    alt = "|".join(sorted(map(re.escape, values), key=len, reverse=True))
    return re.compile(r"(?<![0-9A-Za-z.-])(?:%s)(?![0-9A-Za-z.-])(?! ?ms\b)" % alt)


def _plain_re(values, flags=0):
    if not values:
        return None
    alt = "|".join(sorted(map(re.escape, values), key=len, reverse=True))
    return re.compile(alt, flags)


class Scanner:
    def __init__(self, secrets=None):
        snap = secrets.snapshot() if secrets else {k: set() for k in Secrets.KINDS}
        self.bsn = _digits_re(snap["bsn"])
        self.code = _digits_re(snap["code"])
        self.token = _plain_re(snap["token"])
        self.email = _plain_re(snap["email"], re.I)

    def scan_line(self, line):
        """[(kind, value)] of what this line must not hold."""
        found = []
        rec = parse_line(line)
        # a code is 6 digits: not looked for in fields that are numbers by nature
        texts = ([v for k, v in rec.items() if k not in NUMERIC_KEYS] if rec else [line])
        for rx, kind, where in ((self.bsn, "bsn", [line]), (self.token, "token", [line]),
                                (self.email, "email", [line]), (self.code, "code", texts)):
            if rx:
                for t in where:
                    found += [(kind, m.group(0)) for m in rx.finditer(t)]
        for m in BSN_RE.finditer(line):
            if bsn_valid(m.group(0)):
                found.append(("bsn (any valid)", m.group(0)))
        for m in EMAIL_RE.finditer(line):
            if not m.group(0).lower().endswith(OWN_DOMAINS):
                found.append(("email (any)", m.group(0)))
        return sorted(set(found))


def scan_text(text, secrets=None, scanner=None):
    """[(line number, kind, value, line)] for every line that leaks something."""
    sc = scanner or Scanner(secrets)
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        for kind, value in sc.scan_line(line):
            out.append((no, kind, value, line))
    return out


def scan_files(paths, secrets=None):
    """{path: findings} for the files that leak something."""
    sc = Scanner(secrets)
    out = {}
    for p in sorted(set(map(Path, paths))):
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        f = scan_text(text, scanner=sc)
        if f:
            out[p] = f
    return out


def daemon_logs(dirs, extra=()):
    """Every daemon log under dirs: the [log] files and captured stdout/stderr
    the harness names berichtd-*.log / berichtd-*.out, plus extra paths."""
    found = set(Path(p) for p in extra if Path(p).exists())
    for d in dirs:
        d = Path(d)
        if d.is_dir():
            for pat in ("berichtd*.log", "berichtd*.out"):
                found.update(p for p in d.rglob(pat) if p.is_file())
    return sorted(found)


def report(findings, limit=20):
    lines = []
    for path, fs in findings.items():
        for no, kind, value, line in fs[:limit]:
            lines.append("%s:%d: %s %r in: %s" % (path, no, kind, value, line[:300]))
    return "\n".join(lines)
