"""The checker, in the spirit of Jepsen: what the agencies were told (the
load generator's journal) against what PostgreSQL holds and what the SMTP
sink received, once the cluster is quiet.

check(psql, journal, oins, tag, mail_dir, logs) -> Figures with
  acknowledged   referenties an agency got 201/200 (or a batch item aangenomen/dubbel) for
  lost           acknowledged but not stored, or stored under another berichtId (must be 0)
  stored_twice   an (agency, referentie) stored more than once (must be 0)
  unmailed       notifications of the run not 'sent', or 'sent' while the sink has
                 no mail with their Message-ID (must be 0)
  mailed_twice   Message-IDs the sink got more than once outside the crash
                 windows the reconcilers logged (must be 0); in_window: those inside
  opens_lost     opens answered 201/200 whose message has no opened_at (must be 0)
  report_off     agencies whose rollup (stats_dag) differs from the raw counts (must be 0)
"""
import re
from collections import Counter
from pathlib import Path

from loadgen import read_journal

MSGID_RE = re.compile(rb"^Message-ID:\s*<([0-9a-f]{32})@", re.M | re.I)


class Figures(dict):
    MUST_BE_ZERO = ("lost", "stored_twice", "unmailed", "mailed_twice", "opens_lost",
                    "report_off")

    @property
    def ok(self):
        return all(self[k] == 0 for k in self.MUST_BE_ZERO)

    def failures(self):
        return ["%s=%d" % (k, self[k]) for k in self.MUST_BE_ZERO if self[k]]


def crash_window_ids(logs):
    """Notification ids the reconcilers logged as a crash window (a mail
    the relay may have taken before the instance died: sent again, same
    Message-ID)."""
    ids = set()
    for text in logs:
        for line in text.splitlines():
            if "reconcile: crash window ids" in line:
                m = re.search(r"\bids=\"?([0-9,]+)", line)
                if m:
                    ids.update(int(x) for x in m.group(1).split(",") if x)
    return ids


def sink_message_ids(mail_dir):
    """Counter of the Message-ID refs of every mail the sink stored."""
    c = Counter()
    for p in Path(mail_dir).glob("*.eml"):
        if p.name.startswith("."):
            continue
        head = p.read_bytes().split(b"\r\n\r\n", 1)[0]
        m = MSGID_RE.search(head)
        if m:
            c[m.group(1).decode()] += 1
    return c


def acknowledged(journal_path):
    """({(oin, ref): berichtId}, {berichtId of acknowledged opens})."""
    acked, opens = {}, set()
    for rec in read_journal(journal_path):
        if rec["kind"] == "open":
            if rec["status"] in (200, 201):
                opens.add(rec["refs"][0])
            continue
        for ref, mid in (rec.get("acked") or {}).items():
            acked[(rec["agency"], ref)] = mid
    return acked, opens


def check(psql, journal_path, oins, tag, mail_dir, logs):
    acked, opens = acknowledged(journal_path)
    like = tag + "-%"
    stored = psql("SELECT a.oin, m.referentie, m.id::text FROM messages m "
                  "JOIN agencies a ON a.id = m.agency_id "
                  "WHERE a.oin = ANY(%s) AND m.referentie LIKE %s", (list(oins), like))
    per_ref = Counter((o, r) for o, r, _ in stored)
    ids = {(o, r): i for o, r, i in stored}
    f = Figures()
    f["acknowledged"] = len(acked)
    f["stored"] = len(per_ref)
    f["lost"] = sum(1 for k, mid in acked.items() if ids.get(k) != mid)
    f["stored_twice"] = sum(1 for n in per_ref.values() if n > 1)

    notes = psql("SELECT n.id, n.state, ml.ref FROM notifications n "
                 "JOIN messages m ON m.id = n.message_id "
                 "JOIN agencies a ON a.id = m.agency_id "
                 "LEFT JOIN mails ml ON ml.id = n.mail_id "
                 "WHERE a.oin = ANY(%s) AND m.referentie LIKE %s AND n.kind = 'new'",
                 (list(oins), like))
    sink = sink_message_ids(mail_dir)
    f["notifications"] = len(notes)
    f["unmailed"] = sum(1 for _, st, ref in notes if st != "sent" or sink.get(ref, 0) == 0)
    window = crash_window_ids(logs)
    twice_out = twice_in = 0
    by_ref = {}
    for nid, _, ref in notes:
        if ref:
            by_ref.setdefault(ref, set()).add(nid)
    for ref, nids in by_ref.items():
        if sink.get(ref, 0) > 1:
            if nids & window:
                twice_in += 1
            else:
                twice_out += 1
    f["mailed"] = sum(1 for ref in by_ref if sink.get(ref, 0) > 0)
    f["mailed_twice"] = twice_out
    f["twice_in_window"] = twice_in

    f["opens"] = len(opens)
    f["opens_lost"] = psql("SELECT count(*) FROM messages WHERE id::text = ANY(%s) "
                           "AND opened_at IS NULL", (sorted(opens),))[0][0] if opens else 0

    rows = psql("SELECT a.oin, coalesce((SELECT sum(verstuurd) FROM stats_dag s "
                "  WHERE s.agency_id = a.id), 0), "
                "coalesce((SELECT sum(geopend_3w) FROM stats_dag s WHERE s.agency_id = a.id), 0), "
                "(SELECT count(*) FROM messages m WHERE m.agency_id = a.id), "
                "(SELECT count(*) FROM messages m WHERE m.agency_id = a.id "
                "   AND m.opened_at - m.publicatie_tijdstip <= interval '504 hours') "
                "FROM agencies a WHERE a.oin = ANY(%s)", (list(oins),))
    f["report_off"] = sum(1 for _, v, g, n, o in rows if (v, g) != (n, o))
    f["report"] = {oin: (int(v), int(g), n, o) for oin, v, g, n, o in rows}
    return f
