#!/usr/bin/python3
"""The restore drill (issue 13; the operator's procedure is docs/operations.md,
"Restore drill"). Standalone: its own services (tests/harness/services.sh) in
a run dir of its own, berichtd from BERICHTD_BIN or bin/berichtd.

  1. PostgreSQL with WAL archiving; berichtd migrated, one agency, citizens.
     pg_basebackup.
  2. Phase 1: batch A ingested and mailed, some of it opened; batch B
     ingested (its mails due DIGEST_S later). The restore target: a named
     restore point, taken while B's mails are still to go.
  3. Phase 2: B mailed, batch C ingested and mailed, more opens.
     pg_switch_wal() until archived; berichtd and PostgreSQL stopped, the
     data directory gone.
  4. Restore: base backup + restore_command + recovery_target_name +
     promote; Redis FLUSHALL (the schedule went with the machine); berichtd
     started on it (its reconciler rebuilds Redis); `berichtd stats rebuild`.
  5. Checks: every message acked before the target is there; the rollups
     equal the raw rows; each mail sent after the target is sent again at
     most once, with the same Message-ID; nothing sent before the target is
     sent again.

Exits 0 when every check holds, 1 otherwise (2: the drill could not run).
--keep keeps the run dir (logs, archive, base backup)."""
import argparse
import re
import shutil
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import Daemon, Mailbox, Services, make_agency, new_bsn, post, wait_until  # noqa: E402
import logscan  # noqa: E402
from restore_lib import Cluster  # noqa: E402

PER_BATCH = 20          # citizens per batch, one message each: one mail each
OPEN_A = 7              # of batch A, opened before the target
OPEN_LATER = 5          # of batch A, opened after it (lost with the restore)
DIGEST_S = 6            # [notify] digest_window: a mail is due this long after ingest
DEADLINE_S = 60         # any single wait
MSGID_RE = re.compile(r"<([0-9a-f]{32})@berichtenbox\.example>")


class Drill:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.group = "restore-%s" % uuid.uuid4().hex[:8]
        self.failures = []
        self.figures = {}

    # ------------------------------------------------------------ helpers
    def check(self, ok, what):
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        if not ok:
            self.failures.append(what)

    def daemon(self, name):
        return Daemon(self.svc, name, group=self.group, **{
            "notify.digest_window": "%ds" % DIGEST_S,
            "delivery.workers": "2"})

    def citizens(self, d, tag):
        """PER_BATCH accounts through the portal API, their verified address
        set in SQL (verification is tested elsewhere). Returns [(bsn, address)]."""
        out = []
        for i in range(PER_BATCH):
            bsn, addr = new_bsn(), "%s-%s-%d@restore.example" % (self.group, tag, i)
            r = d.request("POST", "/v1/accounts", token=self.portal, json={"bsn": bsn})
            assert r.status in (200, 201), r.text
            self.svc.psql("UPDATE accounts SET email = %s, email_confirmed_at = now() "
                          "WHERE id = %s", (addr, r.json()["accountId"]))
            harness.SECRETS.add("email", addr)
            out.append((bsn, addr))
        return out

    def ingest(self, d, people, tag):
        """One message to each; returns the berichtIds, all acked (201)."""
        return [post(d, self.agency["token"], bsn, ref="%s-%s-%d" % (self.group, tag, i))
                for i, (bsn, _) in enumerate(people)]

    def open_(self, d, ids):
        for mid in ids:
            r = d.request("POST", "/v1/berichten/%s/openingen" % mid, token=self.portal)
            assert r.status == 201, r.text

    def mails(self):
        """{Message-ID ref: [recipient of each copy]} of everything the sink holds."""
        out = {}
        for m in Mailbox(self.svc.mail_dir).messages():
            ref = MSGID_RE.fullmatch(m["Message-ID"] or "")
            assert ref, "unexpected Message-ID %r" % m["Message-ID"]
            out.setdefault(ref.group(1), []).extend(m.rcpt_tos)
        return out

    def wait_mails(self, addresses):
        want = set(addresses)
        wait_until(lambda: want <= {a for rs in self.mails().values() for a in rs},
                   timeout=DEADLINE_S, what="mails to %d addresses" % len(want))

    def settled(self):
        """Nothing scheduled that is due, nothing being sent."""
        [(n,)] = self.svc.psql("SELECT count(*) FROM notifications WHERE state = 'sending' "
                               "OR (state = 'scheduled' AND due_at <= now())")
        return n == 0

    # ------------------------------------------------------------ the drill
    def run(self):
        t_start = time.monotonic()
        self.svc = Services.start(self.run_dir)
        pg = Cluster(self.svc)
        pg.enable_archiving()
        d1 = self.daemon("before")
        d1.start()
        self.portal = d1.token("portal")
        self.agency = make_agency(d1)
        people = {t: self.citizens(d1, t) for t in "ABC"}
        pg.base_backup()  # online, as in production

        # phase 1: A mailed and partly opened; B ingested, its mails not yet due
        ids_a = self.ingest(d1, people["A"], "A")
        self.wait_mails(a for _, a in people["A"])
        wait_until(self.settled, timeout=DEADLINE_S, what="batch A recorded")
        self.open_(d1, ids_a[:OPEN_A])
        ids_b = self.ingest(d1, people["B"], "B")
        target = "berichtd-drill-%s" % self.group
        pg.restore_point(target)
        [(early,)] = self.svc.psql("SELECT count(*) FROM notifications n JOIN messages m "
                                   "ON m.id = n.message_id WHERE m.id = ANY(%s::uuid[]) "
                                   "AND n.state <> 'scheduled'", (ids_b,))
        if early:
            raise RuntimeError("%d of batch B left 'scheduled' before the restore point: "
                               "the machine is too slow for DIGEST_S" % early)

        # phase 2: B mailed, C ingested and mailed, more opens
        self.open_(d1, ids_a[OPEN_A:OPEN_A + OPEN_LATER])
        ids_c = self.ingest(d1, people["C"], "C")
        self.wait_mails(a for t in "BC" for _, a in people[t])
        wait_until(self.settled, timeout=DEADLINE_S, what="batches B and C recorded")
        pg.switch_and_archive()
        before = self.mails()
        rc = d1.stop()
        self.check(rc == 0, "berichtd (before) exits 0 on SIGTERM (rc %s)" % rc)
        pg.lose_machine()

        # the restore
        t0 = time.monotonic()
        timeline = pg.restore(target)
        self.svc.redis("FLUSHALL")
        known = {r[0]: r[1] for r in self.svc.psql(
            "SELECT m.ref, bool_and(n.state = 'sent') FROM mails m "
            "JOIN notifications n ON n.mail_id = m.id GROUP BY m.ref")}
        d2 = self.daemon("restored")
        d2.start()
        rebuild = d2.cli("stats", "rebuild")
        t_restored = time.monotonic() - t0
        self.check(rebuild.returncode == 0, "berichtd stats rebuild exits 0 (%s%s)"
                   % (rebuild.stdout.strip(), rebuild.stderr.strip()))
        wait_until(self.settled, timeout=DEADLINE_S, what="the restored schedule sent")
        t_resent = time.monotonic() - t0
        after = self.mails()
        rc = d2.stop()
        self.check(rc == 0, "berichtd (restored) exits 0 on SIGTERM (rc %s)" % rc)

        self.verify(people, ids_a, ids_b, ids_c, known, before, after)
        self.privacy([d1, d2])
        self.figures.update({
            "timeline after the restore": timeline,
            "time to restore (PG promoted, berichtd up, stats rebuilt) s": "%.1f" % t_restored,
            "time until the restored schedule was sent s": "%.1f" % t_resent,
            "whole drill s": "%.1f" % (time.monotonic() - t_start)})

    def verify(self, people, ids_a, ids_b, ids_c, known, before, after):
        rows = self.svc.psql("SELECT id::text FROM messages WHERE id = ANY(%s::uuid[])",
                             (ids_a + ids_b + ids_c,))
        present = {r[0] for r in rows}
        self.figures["messages acked before the target"] = len(ids_a) + len(ids_b)
        self.figures["messages acked after the target"] = len(ids_c)
        restored = len(present & set(ids_a + ids_b))
        self.figures["messages restored (acked before the target)"] = restored
        self.figures["messages restored (acked after the target)"] = len(present & set(ids_c))
        self.check(restored == len(ids_a) + len(ids_b),
                   "every message acked before the target is there (%d of %d)"
                   % (restored, len(ids_a) + len(ids_b)))
        [(opened,)] = self.svc.psql("SELECT count(*) FROM messages WHERE id = ANY(%s::uuid[]) "
                                    "AND opened_at IS NOT NULL", (ids_a,))
        self.check(opened == OPEN_A, "the opens before the target are there, the later ones "
                   "not (%d opened, %d expected)" % (opened, OPEN_A))
        self.rollups()

        # the mails: before the target (known to the restored DB as sent),
        # after it (unknown to it), and what the restored daemon sent
        sent_before = {ref for ref, sent in known.items() if sent}
        sent_after = set(before) - sent_before
        again = Counter({ref: len(after[ref]) - len(before.get(ref, ()))
                         for ref in after if len(after[ref]) > len(before.get(ref, ()))})
        new_ids = {ref for ref in again if ref not in before}
        resent = {ref for ref in again if ref in sent_after}
        b_addrs = {a for _, a in people["B"]}
        b_refs = {ref for ref in sent_after if set(before[ref]) & b_addrs}
        self.figures.update({
            "mails sent before the target": len(sent_before),
            "mails sent after the target": len(sent_after),
            "mails resent": sum(again.values()),
            "resent with the same Message-ID": sum(again[r] for r in resent),
            "resent with a new Message-ID": sum(again[r] for r in new_ids),
            "resent twice (must be 0)": sum(1 for r in again if again[r] > 1)})
        self.check(not (set(again) & sent_before),
                   "nothing sent before the target is sent again (%d were)"
                   % len(set(again) & sent_before))
        self.check(all(n == 1 for n in again.values()),
                   "no mail is sent again more than once")
        self.check(not new_ids,
                   "every mail sent again carries its old Message-ID (%d new ones, to %d "
                   "addresses of batch B)" % (len(new_ids), len(
                       {a for r in new_ids for a in after[r]} & b_addrs)))
        self.check(resent == b_refs and len(b_refs) == PER_BATCH,
                   "the mails of batch B (after the target, their messages restored) go "
                   "again once each (%d of %d)" % (len(resent & b_refs), PER_BATCH))
        per_addr = Counter(a for rs in after.values() for a in rs)
        self.check(all(per_addr[a] == 1 for t in "AC" for _, a in people[t]),
                   "batches A and C: one mail per citizen in all")

    def rollups(self):
        """The rollups (0005) against the raw rows, per day, month and year."""
        aid = self.svc.psql("SELECT id FROM agencies WHERE oin = %s", (self.agency["oin"],))[0][0]
        raw = self.svc.psql(
            "SELECT berichttype, papieren_kopie, stats_cohort(publicatie_tijdstip), count(*),"
            "  sum(stats_within(opened_at, publicatie_tijdstip, '504 hours')),"
            "  sum(stats_within(opened_at, publicatie_tijdstip, '1008 hours')) "
            "FROM messages WHERE agency_id = %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", (aid,))
        days = self.svc.psql(
            "SELECT berichttype, papieren_kopie, dag, verstuurd, geopend_3w, geopend_6w "
            "FROM stats_dag WHERE agency_id = %s AND verstuurd <> 0 ORDER BY 1, 2, 3", (aid,))
        self.check(days == raw, "stats_dag equals the raw rows: %r" % (days,))
        for table, col in (("stats_maand", "maand"), ("stats_jaar", "jaar")):
            q = ("SELECT sum(verstuurd), sum(geopend_3w), sum(geopend_6w) FROM %s "
                 "WHERE agency_id = %%s" % table)
            got = self.svc.psql(q, (aid,))[0]
            want = tuple(sum(r[i] for r in raw) for i in (3, 4, 5))
            self.check(tuple(got) == want, "%s sums equal the raw rows (%r, %r)"
                       % (table, got, want))

    def privacy(self, daemons):
        logs = [p for d in daemons for p in (d.log_file, d.out_file) if p.exists()]
        findings = logscan.scan_files(logs, harness.SECRETS)
        self.check(not findings, "the daemon logs hold no BSN, address or token%s"
                   % ("" if not findings else ":\n" + logscan.report(findings)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", default=str(harness.REPO_ROOT / ".test-run" / "restore-drill"))
    ap.add_argument("--keep", action="store_true", help="keep the run dir afterwards")
    args = ap.parse_args()
    if not harness.BERICHTD.exists():
        print("restore drill: %s not built (run make)" % harness.BERICHTD, file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    drill = Drill(run_dir)
    code = 0
    try:
        drill.run()
    except Exception as e:  # noqa: BLE001 - the drill reports, then cleans up
        traceback.print_exc()
        print("restore drill could not finish: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        code = 2
    finally:
        if getattr(drill, "svc", None):
            drill.svc.stop()
        if not args.keep and code == 0 and not drill.failures:
            shutil.rmtree(run_dir, ignore_errors=True)
    print("\nrestore drill figures")
    for k, v in drill.figures.items():
        print("  %-62s %s" % (k, v))
    if drill.failures:
        print("\n%d check(s) failed (run dir %s)" % (len(drill.failures), run_dir))
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
