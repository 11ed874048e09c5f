#!/usr/bin/env python3
"""Shows the newest mail the demo's SMTP sink stored (DIR/*.eml) decoded, as a
mail reader would: the headers with their RFC 2047 words decoded and the
quoted-printable body as text. `--code` prints only the 6-digit verification
code of the newest mail that has one (for `make run`'s curl examples).

    show_mail.py [--code] DIR
"""
import email
import email.policy
import re
import sys
from pathlib import Path


def newest(maildir):
    mails = sorted(Path(maildir).glob("*.eml"), key=lambda p: p.stat().st_mtime)
    if not mails:
        sys.exit("show_mail: no mail in %s yet" % maildir)
    return mails[::-1]


def parse(path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def main(argv):
    code_only = "--code" in argv
    args = [a for a in argv if a != "--code"]
    if len(args) != 1:
        sys.exit(__doc__)
    if code_only:
        for path in newest(args[0]):
            m = re.search(r"^\s*(\d{6})\s*$", parse(path).get_content(), re.M)
            if m:
                print(m.group(1))
                return
        sys.exit("show_mail: no mail with a code in %s" % args[0])
    path = newest(args[0])[0]
    msg = parse(path)
    print("==> %s" % path)
    for name in ("Date", "From", "To", "Subject", "Message-ID"):
        if msg[name] is not None:
            print("%s: %s" % (name, msg[name]))
    print()
    print(msg.get_content().rstrip("\n"))


if __name__ == "__main__":
    main(sys.argv[1:])
