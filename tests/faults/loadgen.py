"""Load of well-behaved agencies and a portal, through HAProxy.

Load(base_url, agencies, citizens, portal_token, journal, tag) runs threads:
  * one per agency posting single messages (POST /v1/berichten),
  * one posting batches of BATCH items for the agencies in turn (POST /v1/batches),
  * one opening some acknowledged messages as the portal (POST .../openingen),
until stop(). Every message has a unique referentie; a 503, any 5xx from
HAProxy (no instance could answer) and a connection error are retried with
the same referentie and body, after Retry-After (or 0.5 s), until the
message's deadline. Every answer goes to the journal (JSONL), one line each:
  {"t": unix time, "kind": "single"|"batch"|"open", "agency": oin,
   "refs": [...], "status": http status or "conn", "try": n,
   "acked": {ref: berichtId} (what this answer acknowledged), "id": berichtId}
"""
import json
import random
import threading
import time

from cluster import harness

BATCH = 10
GIVE_UP_S = 240      # a message's retries stop after this (a loss to report, not a hang)
RETRYABLE = {500, 502, 503, 504}


class Journal:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "a")
        self.lock = threading.Lock()

    def write(self, rec):
        rec["t"] = time.time()
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()

    def close(self):
        self.f.close()


def read_journal(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Load:
    def __init__(self, base_url, agencies, citizens, portal, journal, tag, pause=0.05,
                 open_share=0.3):
        self.base_url = base_url
        self.agencies = agencies
        self.citizens = citizens
        self.portal = portal
        self.journal = journal
        self.tag = tag
        self.pause = pause
        self.open_share = open_share
        self.stopping = threading.Event()
        self.threads = []
        self.seq = 0
        self.lock = threading.Lock()
        self.acked = []      # berichtIds, for the opener
        self.sent = 0        # messages submitted (first tries)
        self.requests = 0
        self.rng = random.Random()

    def _ref(self, oin):
        with self.lock:
            self.seq += 1
            return "%s-%s-%d" % (self.tag, oin[-4:], self.seq)

    def _send(self, kind, path, token, body, oin, refs, deadline):
        """POST until an answer that is not retryable or the deadline;
        returns the last Response (None: never answered)."""
        n = 0
        while True:
            n += 1
            with self.lock:
                self.requests += 1
            try:
                r = harness.request(self.base_url, "POST", path, token=token, json=body,
                                    timeout=30)
            except OSError as e:
                self.journal.write({"kind": kind, "agency": oin, "refs": refs,
                                    "status": "conn", "try": n, "error": type(e).__name__})
                r = None
            if r is not None:
                acked = {}
                rid = None
                if r.status in (200, 201) and kind == "single":
                    rid = r.json().get("berichtId")
                    acked = {refs[0]: rid}
                elif r.status == 200 and kind == "batch":
                    for item in r.json().get("resultaten", []):
                        if item.get("status") in ("aangenomen", "dubbel"):
                            acked[item["referentie"]] = item["berichtId"]
                elif r.status in (200, 201) and kind == "open":
                    rid = refs[0]
                self.journal.write({"kind": kind, "agency": oin, "refs": refs,
                                    "status": r.status, "try": n, "acked": acked, "id": rid})
                if r.status not in RETRYABLE:
                    with self.lock:
                        self.acked.extend(v for v in acked.values() if v)
                    return r
            if time.monotonic() > deadline:
                return r
            wait = 0.5
            if r is not None:
                try:
                    wait = min(float(r.headers.get("Retry-After", "0.5")), 5.0)
                except ValueError:
                    pass
            time.sleep(max(wait, 0.2))

    def _single(self, agency):
        while not self.stopping.is_set():
            ref = self._ref(agency["oin"])
            body = {"bsn": self.rng.choice(self.citizens), "berichttype": "T1", "referentie": ref}
            with self.lock:
                self.sent += 1
            self._send("single", "/v1/berichten", agency["token"], body, agency["oin"], [ref],
                       time.monotonic() + GIVE_UP_S)
            time.sleep(self.pause)

    def _batch(self):
        i = 0
        while not self.stopping.is_set():
            agency = self.agencies[i % len(self.agencies)]
            i += 1
            refs = [self._ref(agency["oin"]) for _ in range(BATCH)]
            items = [{"bsn": self.rng.choice(self.citizens), "berichttype": "T2",
                      "referentie": ref} for ref in refs]
            with self.lock:
                self.sent += BATCH
            self._send("batch", "/v1/batches", agency["token"], {"berichten": items},
                       agency["oin"], refs, time.monotonic() + GIVE_UP_S)
            time.sleep(self.pause * 4)

    def _opener(self):
        opened = set()
        while not self.stopping.is_set():
            time.sleep(self.pause * 2)
            with self.lock:
                pool = [m for m in self.acked[-200:] if m not in opened]
            if not pool or self.rng.random() > self.open_share * 3:
                continue
            mid = self.rng.choice(pool)
            opened.add(mid)
            self._send("open", "/v1/berichten/%s/openingen" % mid, self.portal, None, "",
                       [mid], time.monotonic() + GIVE_UP_S)

    def start(self):
        self.t0 = time.monotonic()
        targets = [(self._single, (a,)) for a in self.agencies]
        targets += [(self._batch, ()), (self._opener, ())]
        for fn, args in targets:
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, timeout=GIVE_UP_S + 60):
        """Ends the load: no new message; the retries of those under way go
        on to their deadline."""
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)
        self.elapsed = time.monotonic() - self.t0
        return self
