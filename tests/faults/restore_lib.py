"""The PostgreSQL half of the restore drill (restore_drill.py): WAL archiving,
the base backup, a named restore point, and a point-in-time restore into a
fresh data directory, done the way docs/operations.md ("Restore drill")
tells an operator to, on the private cluster of tests/harness/services.sh.

PostgreSQL runs as the `postgres` user (services.sh); everything it must
read or write (archive, base backup) lives under the cluster's root, which
that user owns."""
import shutil
import subprocess
import time
from pathlib import Path

PG_USER = "postgres"


def as_pg(*args, timeout=120):
    """Runs a PostgreSQL tool as the postgres user; raises with its output."""
    p = subprocess.run(["runuser", "-u", PG_USER, "--", *map(str, args)], cwd="/",
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s%s" % (args[0], p.returncode, p.stdout, p.stderr))
    return p.stdout


class Cluster:
    """The services' cluster, with an archive and a base backup beside it."""

    def __init__(self, services):
        self.svc = services
        self.root = Path(services.env["BERICHTD_PG_ROOT"])
        self.data = Path(services.pg_data)
        self.bin = Path(services.pg_bin)
        self.archive = self.root / "wal-archive"
        self.base = self.root / "base-backup"

    def sql1(self, sql, params=None):
        """The first column of the first row (autocommit, database berichtd)."""
        rows = self.svc.psql(sql, params)
        return rows[0][0] if rows else None

    def enable_archiving(self):
        """archive_mode needs a restart; wal_level replica is the default, set
        anyway so that a changed default cannot make the drill pass vacuously.
        The command never overwrites a segment that is already archived."""
        for d in (self.archive, self.base):
            shutil.rmtree(d, ignore_errors=True)
        as_pg("mkdir", "-m", "700", self.archive)
        cmd = "test ! -f %s/%%f && cp %%p %s/%%f" % (self.archive, self.archive)
        for key, value in (("wal_level", "replica"), ("archive_mode", "on"),
                           ("archive_command", cmd), ("archive_timeout", "0")):
            self.svc.psql("ALTER SYSTEM SET %s = '%s'" % (key, value.replace("'", "''")))
        self.svc.pg_stop("fast")
        self.svc.pg_start()
        mode = self.sql1("SHOW archive_mode")
        assert mode == "on", "archive_mode is %r after the restart" % mode

    def base_backup(self):
        """pg_basebackup of the running cluster (plain format, fast checkpoint,
        its own WAL streamed into it)."""
        as_pg(self.bin / "pg_basebackup", "-h", "127.0.0.1", "-p", self.svc.pg_port,
              "-U", "postgres", "-D", self.base, "-Fp", "-X", "stream", "-c", "fast")
        assert (self.base / "PG_VERSION").exists()

    def restore_point(self, name):
        """pg_create_restore_point(name); returns its LSN."""
        return self.sql1("SELECT pg_create_restore_point(%s)::text", (name,))

    def switch_and_archive(self, timeout=30):
        """Closes the current segment and waits until the archiver has it:
        every commit up to now is then in the archive. Returns the segment."""
        seg = self.sql1("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        while not (self.archive / seg).exists():
            failed = self.svc.psql("SELECT last_failed_wal, failed_count FROM pg_stat_archiver")
            if time.monotonic() > deadline:
                raise AssertionError("segment %s not archived after %ss (archiver: %r)"
                                     % (seg, timeout, failed))
            time.sleep(0.1)
        return seg

    def lose_machine(self):
        """Stops the cluster and moves its data directory aside: from here on
        only the base backup and the archive exist."""
        self.svc.pg_stop("fast")
        lost = self.root / "data.lost"
        shutil.rmtree(lost, ignore_errors=True)
        self.data.rename(lost)

    def restore(self, target_name, timeout=60):
        """A new data directory from the base backup, recovering from the
        archive up to the restore point, then promoted; starts it on the old
        port (services.sh pg-start) and waits until it accepts writes."""
        as_pg("cp", "-a", self.base, self.data)
        # services.sh puts the socket in the data directory: pg_basebackup
        # skipped the socket but copied its lock file, which would stop the start
        for lock in self.data.glob(".s.PGSQL.*.lock"):
            lock.unlink()
        with open(self.data / "postgresql.auto.conf", "a") as f:
            f.write("# restore drill (docs/operations.md)\n"
                    "restore_command = 'cp %s/%%f %%p'\n"
                    "recovery_target_name = '%s'\n"
                    "recovery_target_action = 'promote'\n" % (self.archive, target_name))
        (self.data / "recovery.signal").touch()
        shutil.chown(self.data / "recovery.signal", PG_USER, PG_USER)
        self.svc.pg_start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.sql1("SELECT pg_is_in_recovery()") is False:
                    break
            except Exception:  # noqa: BLE001 - still starting up
                pass
            if time.monotonic() > deadline:
                raise AssertionError("restored cluster not promoted after %ss" % timeout)
            time.sleep(0.1)
        # the promotion removed recovery.signal; the settings stay harmless,
        # but a later restart must not look like a recovery: drop them
        for key in ("restore_command", "recovery_target_name", "recovery_target_action"):
            self.svc.psql("ALTER SYSTEM RESET %s" % key)
        self.svc.psql("SELECT pg_reload_conf()")
        return int(self.sql1("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)
