#!/usr/bin/python3
"""Scriptable SMTP server for berichtd tests: a real SMTP peer on loopback
whose every reply is chosen by the test.

    smtp_script.py --dir DIR [--host 127.0.0.1] [--port 0]

The script is DIR/script.json, read again at every new connection (so one
daemon can be driven through several cases; a missing file means defaults).
Keys, all optional:

    "pipelining": true      advertise PIPELINING in the EHLO reply
    "chunking": false       advertise CHUNKING (the client may then use BDAT)
    "extensions": [...]     the other EHLO keywords; default 8BITMIME,
                            ENHANCEDSTATUSCODES, DSN, SIZE 67108864 (a Postfix
                            relay's set; berichtd sets a DSN ENVID)
    "greeting", "ehlo", "helo", "mail", "rcpt", "data", "end", "bdat",
    "rset", "noop", "quit"  the action for that step
    "rcpt_for": {address: action}   RCPT action for one recipient

An action is a reply ("451 4.3.0 try later"; a bare code such as "250" gets
a default text; lines joined by "\\n" make a multi-line reply), "drop"
(close the connection instead of replying), "hang" (never reply; the
client's timeout ends it), "trickle" (send the first byte of a reply, then
one space every 0.5 s, never ending the line: a relay that holds a client
up for ever, since every byte restarts a read timeout), or a list of actions, one per mail transaction
of the connection (the last one repeats). Any 421 reply closes the
connection after it is sent, as RFC 5321 says.

Defaults behave like Postfix: everything is accepted; DATA without an
accepted recipient gets "503 5.5.1 Error: need RCPT command", DATA without
MAIL "503 5.5.1 Error: need MAIL command"; the end of data (or BDAT LAST)
without an accepted recipient gets "554 5.5.1 Error: no valid recipients".
Commands are read line by line from one buffer and answered in order, so
pipelined commands work; each transcript entry says whether more input had
already arrived when the command was answered ("early").

Written to DIR:
    port                 the port, once listening
    transcript.jsonl     one line per event: {"conn", "t", "dir": "c"|"s"|"x",
                         "line", "early"}: client line, server reply, or what
                         the server did ("drop", "hang", "eof", "connect")
    mail/<seq>.eml       every message whose content arrived in full (CRLF,
    mail/<seq>.json      dot-unstuffed) with its envelope: mail_from,
                         mail_options, rcpt_tos (accepted), rcpt_options,
                         reply (what the end of data got, or "drop"/"hang"),
                         accepted (2xx with an accepted recipient), conn
                         (.json is renamed in first, as the sink does)

ScriptedSmtp (below) starts one as a subprocess for a test.
"""
import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_EXTENSIONS = ["8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "SIZE 67108864"]
HOSTNAME = "smtp-script.test"

# texts for replies given as a bare code
DEFAULT_TEXT = {
    "220": HOSTNAME + " ESMTP scripted",
    "221": "2.0.0 Bye",
    "250": "2.0.0 Ok",
    "354": "End data with <CR><LF>.<CR><LF>",
    "421": "4.3.2 Service not available, closing transmission channel",
    "450": "4.2.0 Mailbox unavailable",
    "451": "4.3.0 Local error in processing",
    "452": "4.3.1 Insufficient system storage",
    "500": "5.5.2 Syntax error, command unrecognized",
    "502": "5.5.1 Command not implemented",
    "503": "5.5.1 Bad sequence of commands",
    "550": "5.1.1 Mailbox unavailable",
    "552": "5.3.4 Message size exceeds fixed limit",
    "553": "5.1.3 Mailbox name not allowed",
    "554": "5.7.1 Transaction failed",
}

NEED_MAIL = "503 5.5.1 Error: need MAIL command"
NEED_RCPT = "503 5.5.1 Error: need RCPT command"
NO_VALID_RCPT = "554 5.5.1 Error: no valid recipients"


class Dropped(Exception):
    """The script closed the connection (drop, or after a 421)."""


def reply_lines(reply):
    """"451" -> ["451 4.3.0 ..."]; "250-a\\n250 b" or "250 a\\nb" -> multi-line."""
    parts = reply.split("\n")
    code = parts[0][:3]
    if len(parts) == 1 and re.fullmatch(r"\d{3}", parts[0]):
        parts = ["%s %s" % (code, DEFAULT_TEXT.get(code, "%s.0.0 scripted reply" % code[0]))]
    out = []
    for i, p in enumerate(parts):
        text = p[4:] if re.match(r"\d{3}[ -]", p) else p
        out.append("%s%s%s" % (code, " " if i == len(parts) - 1 else "-", text))
    return out


class Store:
    """The transcript and the message files of one server directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.mail_dir = self.root / "mail"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.transcript = self.root / "transcript.jsonl"
        self.seq = itertools.count(1 + len(list(self.mail_dir.glob("*.eml"))))

    def script(self):
        try:
            return json.loads((self.root / "script.json").read_text())
        except FileNotFoundError:
            return {}

    def log(self, conn, direction, line, early=False):
        rec = {"conn": conn, "t": time.time(), "dir": direction, "line": line, "early": early}
        with open(self.transcript, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def save(self, meta, raw):
        base = "%08d" % next(self.seq)
        for name, data in ((base + ".json", json.dumps(meta).encode()), (base + ".eml", raw)):
            tmp = self.mail_dir / (".tmp-" + name)
            tmp.write_bytes(data)
            os.rename(tmp, self.mail_dir / name)


class Session:
    """One client connection: reads lines (or BDAT chunks) from its own buffer
    and answers each in order."""

    def __init__(self, store, conn_id, reader, writer):
        self.store = store
        self.id = conn_id
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.script = store.script()
        self.txn = 0            # mail transactions begun on this connection (MAIL seen)
        self.current_rcpt = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_options = []
        self.rcpts = []
        self.rcpt_options = []
        self.bdat = None        # bytearray while BDAT chunks are being collected
        self.bdat_failed = None  # the first refusal of a chunk: later ones get it too

    # -- input
    async def _fill(self):
        data = await self.reader.read(65536)
        if not data:
            raise EOFError
        self.buf += data

    async def readline(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > 1 << 20:
                raise EOFError  # no line end in a megabyte: not SMTP
            await self._fill()

    async def readbytes(self, n):
        while len(self.buf) < n:
            await self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    # -- actions
    def action(self, step, default):
        a = self.script.get(step)
        if step == "rcpt" and self.current_rcpt is not None:
            a = self.script.get("rcpt_for", {}).get(self.current_rcpt, a)
        if isinstance(a, list):
            a = a[min(max(self.txn - 1, 0), len(a) - 1)] if a else None
        return default if a is None else a

    async def answer(self, step, default):
        """Carries out the action for step; returns the reply sent (str)."""
        a = self.action(step, default)
        if a == "drop":
            self.store.log(self.id, "x", "drop " + step)
            raise Dropped
        if a == "hang":
            self.store.log(self.id, "x", "hang " + step)
            try:
                while True:
                    await self._fill()  # swallow whatever comes until the client gives up
            except EOFError:
                pass
            raise Dropped
        if a == "trickle":
            self.store.log(self.id, "x", "trickle " + step)
            self.writer.write(b"2")
            while True:
                await self.writer.drain()
                await asyncio.sleep(0.5)
                self.writer.write(b" ")
        lines = reply_lines(a)
        early = len(self.buf) > 0
        for ln in lines:
            self.store.log(self.id, "s", ln, early)
        self.writer.write("".join(ln + "\r\n" for ln in lines).encode())
        await self.writer.drain()
        if lines[0].startswith("421"):
            raise Dropped
        return lines[-1]

    def ehlo_reply(self):
        kw = list(self.script.get("extensions", DEFAULT_EXTENSIONS))
        if self.script.get("pipelining", True):
            kw.append("PIPELINING")
        if self.script.get("chunking", False):
            kw.append("CHUNKING")
        return "\n".join(["250 " + HOSTNAME] + kw)

    # -- the dialogue
    async def run(self):
        self.store.log(self.id, "x", "connect")
        greeting = await self.answer("greeting", "220")
        refused = not greeting.startswith("2")
        while True:
            raw = await self.readline()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.store.log(self.id, "c", line)
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if verb == "QUIT":
                await self.answer("quit", "221")
                return
            if refused:  # after a 4xx/5xx greeting only QUIT is served
                await self.answer("refused", "503 5.5.1 Error: service refused")
                continue
            if verb == "EHLO":
                self.reset()
                await self.answer("ehlo", self.ehlo_reply())
            elif verb == "HELO":
                self.reset()
                await self.answer("helo", "250 " + HOSTNAME)
            elif verb == "MAIL":
                await self.on_mail(arg)
            elif verb == "RCPT":
                await self.on_rcpt(arg)
            elif verb == "DATA":
                await self.on_data()
            elif verb == "BDAT":
                await self.on_bdat(arg)
            elif verb == "RSET":
                self.reset()
                await self.answer("rset", "250 2.0.0 Ok")
            elif verb == "NOOP":
                await self.answer("noop", "250 2.0.0 Ok")
            else:
                await self.answer("unknown", "502 5.5.2 Error: command not recognized")

    async def on_mail(self, arg):
        m = re.match(r"FROM:\s*<([^>]*)>(.*)", arg, re.I)
        if not m:
            await self.answer("syntax", "501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        if self.mail_from is not None:
            await self.answer("nested", "503 5.5.1 Error: nested MAIL command")
            return
        self.txn += 1
        reply = await self.answer("mail", "250 2.1.0 Ok")
        if reply.startswith("2"):
            self.mail_from = m.group(1)
            self.mail_options = m.group(2).split()

    async def on_rcpt(self, arg):
        m = re.match(r"TO:\s*<([^>]*)>(.*)", arg, re.I)
        if not m:
            await self.answer("syntax", "501 5.5.4 Syntax: RCPT TO:<address>")
            return
        if self.mail_from is None:
            await self.answer("sequence", NEED_MAIL)
            return
        self.current_rcpt = m.group(1)
        try:
            reply = await self.answer("rcpt", "250 2.1.5 Ok")
        finally:
            self.current_rcpt = None
        if reply.startswith("2"):
            self.rcpts.append(m.group(1))
            self.rcpt_options.append(m.group(2).split())

    def envelope(self, reply):
        return {"mail_from": self.mail_from, "mail_options": self.mail_options,
                "rcpt_tos": list(self.rcpts), "rcpt_options": self.rcpt_options,
                "reply": reply, "accepted": reply.startswith("2") and bool(self.rcpts),
                "conn": self.id, "received_at": time.time()}

    async def on_data(self):
        if self.mail_from is None:
            default = NEED_MAIL
        elif not self.rcpts:
            default = NEED_RCPT
        else:
            default = "354"
        reply = await self.answer("data", default)
        if not reply.startswith("3"):
            if reply.startswith(("2", "4", "5")):
                self.reset()
            return
        content = bytearray()
        while True:
            line = await self.readline()
            if line in (b".\r\n", b".\n"):
                break
            content += line[1:] if line.startswith(b".") else line
        self.store.log(self.id, "c", "<%d bytes>" % len(content))
        self.store.log(self.id, "c", ".")
        await self.finish(bytes(content), "end")

    async def finish(self, content, step):
        default = "250 2.0.0 Ok: queued as %d-%d" % (self.id, self.txn) if self.rcpts \
            else NO_VALID_RCPT
        a = self.action(step, default)
        if self.mail_from is not None:
            self.store.save(self.envelope(a if a in ("drop", "hang") else reply_lines(a)[-1]),
                            content)
        await self.answer(step, default)
        self.reset()

    async def on_bdat(self, arg):
        m = re.fullmatch(r"(\d+)(\s+LAST)?", arg, re.I)
        if not m:
            await self.answer("syntax", "501 5.5.4 Syntax: BDAT count [LAST]")
            return
        chunk = await self.readbytes(int(m.group(1)))
        self.store.log(self.id, "c", "<%d bytes>" % len(chunk))
        if self.bdat is None:
            self.bdat = bytearray()
        self.bdat += chunk
        if m.group(2) and self.bdat_failed is None:
            await self.finish(bytes(self.bdat), "end")
            return
        if self.bdat_failed is not None:
            default = self.bdat_failed
        elif self.mail_from is None or not self.rcpts:
            default = NO_VALID_RCPT
        else:
            default = "250 2.0.0 Ok: %d bytes" % len(chunk)
        reply = await self.answer("bdat", default)
        if not reply.startswith("2") and self.bdat_failed is None:
            self.bdat_failed = reply
        if m.group(2):
            self.reset()


class Server:
    def __init__(self, root):
        self.store = Store(root)
        self.conns = itertools.count(1)

    async def handle(self, reader, writer):
        s = Session(self.store, next(self.conns), reader, writer)
        try:
            await s.run()
        except (Dropped, EOFError, ConnectionError):
            pass
        except Exception as e:  # a bug here must show in the transcript, not hang a test
            self.store.log(s.id, "x", "error %r" % e)
        finally:
            self.store.log(s.id, "x", "close")
            writer.close()


async def serve(args):
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    server = Server(root)
    srv = await asyncio.start_server(server.handle, args.host, args.port, reuse_address=True)
    port = srv.sockets[0].getsockname()[1]
    tmp = root / "port.tmp"
    tmp.write_text("%d\n" % port)
    os.rename(tmp, root / "port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()


# ------------------------------------------------------------- test helper

class ScriptedSmtp:
    """One smtp_script.py process for a test: start(), set_script(),
    transcript(), messages(), stop(). dir is created if missing."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.mail_dir = self.root / "mail"
        self.proc = None
        self.port = None

    def start(self, timeout=10, **script):
        self.set_script(**script)
        self._log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, __file__, "--dir", str(self.root)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.root / "port").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("smtp_script did not start:\n%s"
                                   % (self.root / "server.log").read_text(errors="replace"))
            time.sleep(0.02)
        self.port = int((self.root / "port").read_text())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self._log.close()
        self.proc = None

    def set_script(self, **script):
        """Replaces the script; the next connection uses it."""
        tmp = self.root / "script.json.tmp"
        tmp.write_text(json.dumps(script))
        os.replace(tmp, self.root / "script.json")

    def transcript(self, conn=None):
        try:
            text = (self.root / "transcript.jsonl").read_text()
        except FileNotFoundError:
            return []
        recs = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        return [r for r in recs if conn is None or r["conn"] == conn]

    def connections(self, containing=None):
        """{conn id: [records]}, only those where some client line contains
        the string `containing` (e.g. a recipient address)."""
        out = {}
        for r in self.transcript():
            out.setdefault(r["conn"], []).append(r)
        if containing is not None:
            out = {c: rs for c, rs in out.items()
                   if any(r["dir"] == "c" and containing in r["line"] for r in rs)}
        return out

    def messages(self):
        """[(envelope dict, raw bytes)] in arrival order."""
        out = []
        for p in sorted(self.mail_dir.glob("[0-9]*.eml")):
            try:
                out.append((json.loads(p.with_suffix(".json").read_text()), p.read_bytes()))
            except FileNotFoundError:
                continue
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
