#!/usr/bin/env bash
# check.sh - `make deb-check`: the package as an administrator meets it, on
# this machine (root): lintian, `apt-get install ./DEB`, the installed binary,
# unit, config and man pages, then a purge that must leave none of its files.
#
#   check.sh DEB VERSION
#
# The package is purged again on any failure, so the machine is left as found
# (the berichtd system account stays, as Debian keeps system users).
set -euo pipefail

deb=$1
version=$2
conf=/etc/berichtd/berichtd.conf
apt=(apt-get -y -q -o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive
fail() { echo "deb-check: $*" >&2; exit 1; }
step() { echo "deb-check: $*"; }

[ -f "$deb" ] || fail "no package $deb"
case "$deb" in /*|./*) ;; *) deb=./$deb ;; esac

step "lintian $deb"
# lintian unpacks what it checks: as nobody when it can read the package
as=()
if [ "$(id -u)" = 0 ] && runuser -u nobody -- test -r "$deb" 2>/dev/null; then
	as=(runuser -u nobody --)
fi
"${as[@]}" lintian --fail-on error --display-info "$deb" || fail "lintian found errors"

work=$(mktemp -d)
installed=0
cleanup() {
	if [ "$installed" = 1 ]; then
		"${apt[@]}" purge berichtd >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step "apt-get install $deb"
"${apt[@]}" install "$deb" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "install failed"; }
installed=1
dpkg-query -L berichtd > "$work/files"

step "berichtd version"
got=$(berichtd version)
[ "$got" = "berichtd $version" ] || fail "berichtd version says '$got', not 'berichtd $version'"

step "systemd-analyze verify /lib/systemd/system/berichtd.service"
systemd-analyze verify /lib/systemd/system/berichtd.service

step "the account and the modes of /etc/berichtd (sysusers, tmpfiles)"
getent passwd berichtd >/dev/null || fail "no berichtd account"
[ "$(stat -c '%a %U %G' /etc/berichtd)" = "750 root berichtd" ] \
	|| fail "/etc/berichtd is $(stat -c '%a %U %G' /etc/berichtd)"
[ "$(stat -c '%a %U %G' "$conf")" = "640 root berichtd" ] \
	|| fail "$conf is $(stat -c '%a %U %G' "$conf")"

step "berichtd check-config -c $conf"
# as installed it lacks only the BSN key, which the administrator makes once
if [ ! -e /etc/berichtd/bsn.key ]; then
	if berichtd check-config -c "$conf" 2>"$work/err"; then
		fail "check-config passed without a BSN key"
	fi
	grep -q "security.bsn_key_file: cannot open /etc/berichtd/bsn.key" "$work/err" \
		|| { cat "$work/err" >&2; fail "check-config did not name the missing key"; }
	sed 's/^/deb-check:   without a key: /' "$work/err"
fi
# with one, handed over as systemd does it (LoadCredential=bsn.key:...)
mkdir -m 700 "$work/creds"
openssl rand -hex 32 > "$work/creds/bsn.key"
CREDENTIALS_DIRECTORY="$work/creds" berichtd check-config -c "$conf" \
	|| fail "check-config failed with a BSN key"

step "man -w berichtd; man -w 5 berichtd.conf"
man -w berichtd
man -w 5 berichtd.conf

step "apt-get purge berichtd"
"${apt[@]}" purge berichtd >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "purge failed"; }
installed=0
left=0
while read -r f; do
	# shared directories (/usr, /etc, ...) stay; the package's files must not
	if [ -e "$f" ] && { [ ! -d "$f" ] || [[ "$f" == */berichtd ]]; }; then
		echo "deb-check: left after purge: $f" >&2
		left=1
	fi
done < "$work/files"
[ "$left" = 0 ] || fail "files left after purge"
status=$(dpkg-query -W -f='${db:Status-Status}' berichtd 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "dpkg says berichtd is $status"
step "ok ($(wc -l < "$work/files") paths installed and removed)"
