#!/usr/bin/python3
"""SMTP sink for berichtd tests (started by tests/harness/services.sh).

Accepts every message on --host/--port and stores it under --dir as
    <seq:08d>-<uuid>.eml   raw DATA bytes as received (CRLF kept, dot-unstuffed)
    <seq:08d>-<uuid>.json  {"mail_from", "rcpt_tos", "received_at", ...}
Both are written to a hidden tmp name and renamed; the .json is renamed first,
so a visible .eml always has its sidecar.

Behaviour controls for fault tests:
  * recipient local part starting with "hardbounce" -> 550 5.1.1 at RCPT
  * recipient local part starting with "softbounce" -> 451 4.3.0 at RCPT
  * file <dir>/../smtp/mode (checked on every command):
        "tempfail" -> 421 on connect and for MAIL/RCPT/DATA
        "permfail" -> 554 5.7.1 for MAIL
        "slow MS"  -> the reply to the end of data waits MS milliseconds
                      (a slow relay: a batch's session lasts long)
Uses Debian's aiosmtpd 1.4.x (asyncio server, no threads).
"""
import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
import uuid

from aiosmtpd.smtp import SMTP

log = logging.getLogger("smtp_sink")


class Sink:
    """aiosmtpd handler: recipient-based bounces, mode file, atomic storage."""

    def __init__(self, maildir, modefile):
        self.maildir = maildir
        self.modefile = modefile
        self.seq = self._last_seq()
        self.count = 0

    def _last_seq(self):
        # continue numbering after a restart so that names keep sorting in order
        last = 0
        for name in os.listdir(self.maildir):
            m = re.match(r"(\d{8})-", name)
            if m:
                last = max(last, int(m.group(1)))
        return last

    def mode(self):
        try:
            with open(self.modefile) as f:
                return f.read().strip()
        except OSError:
            return ""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        mode = self.mode()
        if mode == "tempfail":
            return "421 4.3.2 Service not available (tempfail mode)"
        if mode == "permfail":
            return "554 5.7.1 Rejected (permfail mode)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode() == "tempfail":
            return "421 4.3.2 Service not available (tempfail mode)"
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("hardbounce"):
            return "550 5.1.1 User unknown"
        if local.startswith("softbounce"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode()
        if mode == "tempfail":
            return "421 4.3.2 Service not available (tempfail mode)"
        if mode.startswith("slow "):
            await asyncio.sleep(int(mode.split()[1]) / 1000.0)
        self.seq += 1
        self.count += 1
        base = "%08d-%s" % (self.seq, uuid.uuid4().hex)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "received_at": time.time(),
            "mail_options": list(envelope.mail_options),
            "peer": list(session.peer) if session.peer else None,
            "helo": session.host_name,
        }
        raw = envelope.original_content or b""
        self._write(base + ".json", json.dumps(meta).encode())
        self._write(base + ".eml", raw)
        log.info("stored %s from=%s to=%s bytes=%d", base, envelope.mail_from,
                 ",".join(envelope.rcpt_tos), len(raw))
        return "250 2.0.0 OK queued as %s" % base

    def _write(self, name, data):
        tmp = os.path.join(self.maildir, ".tmp-" + name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.maildir, name))


class SinkSMTP(SMTP):
    """Answers 421 at connect time when the mode file says tempfail."""

    async def _handle_client(self):
        if self.event_handler.mode() == "tempfail":
            await self.push("421 4.3.2 Service not available (tempfail mode)")
            self.transport.close()
            return
        await super()._handle_client()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True, help="mail directory")
    ap.add_argument("--pidfile", help="write own pid here once listening")
    args = ap.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every connection at INFO; keep only warnings from it
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    maildir = os.path.abspath(args.dir)
    os.makedirs(maildir, exist_ok=True)
    modefile = os.path.join(os.path.dirname(maildir), "smtp", "mode")
    handler = Sink(maildir, modefile)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SinkSMTP(handler, hostname="sink.test", ident="berichtd-test-sink",
                         data_size_limit=64 * 1024 * 1024, decode_data=False,
                         enable_SMTPUTF8=True, timeout=300),
        host=args.host, port=args.port, backlog=512, reuse_address=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    log.info("listening on %s:%d, storing in %s", args.host, args.port, maildir)

    await stop.wait()
    server.close()
    log.info("shutting down after %d messages", handler.count)
    try:
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
