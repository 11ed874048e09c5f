#!/usr/bin/env bash
# build.sh - stages the package tree and builds OUTDIR/berichtd_VERSION-REV_ARCH.deb
# with dpkg-deb (no debhelper). Called by `make deb`, which builds the hardened
# binary and passes what common/install.h says:
#
#   build.sh BINARY OUTDIR     env: VERSION, DEB_REVISION, DATADIR, CONFIG_FILE, MAINTAINER
#
# The example config is `berichtd config-example` with [templates] dir set to
# the packaged templates; the man pages are `berichtd man 8|5`; Depends comes
# from dpkg-shlibdeps. Prints the path of the .deb on its last line.
set -euo pipefail

bin=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
arch=$(dpkg --print-architecture)
debversion="$VERSION-$DEB_REVISION"
root="$out/deb-root"
doc="$root/usr/share/doc/berichtd"
# reproducible: the time of the last commit, unless the caller set one
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$root"
mkdir -p "$root/DEBIAN"
umask 022

install -D -m 0755 "$bin" "$root/usr/bin/berichtd"
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/berichtd"
staged="$root/usr/bin/berichtd"
got=$("$staged" version)
[ "$got" = "berichtd $VERSION" ] || { echo "build.sh: binary says '$got', not $VERSION" >&2; exit 1; }

install -d "$root$DATADIR/migrations" "$root$DATADIR/templates"
install -m 0644 "$top"/migrations/*.sql "$root$DATADIR/migrations/"
install -m 0644 "$top"/config/templates/*.txt "$root$DATADIR/templates/"

install -D -m 0644 "$top/systemd/berichtd.service" "$root/lib/systemd/system/berichtd.service"
install -D -m 0644 "$top/systemd/berichtd.sysusers" "$root/usr/lib/sysusers.d/berichtd.conf"
install -D -m 0644 "$top/systemd/berichtd.tmpfiles" "$root/usr/lib/tmpfiles.d/berichtd.conf"

# the example config, pointing at the templates of the package
conf="$root$CONFIG_FILE"
install -d "$(dirname "$conf")"
"$staged" config-example |
	sed "/^\[templates\]/,/^\[/ s#^dir = .*#dir = $DATADIR/templates#" > "$conf"
grep -qx "dir = $DATADIR/templates" "$conf" \
	|| { echo "build.sh: no [templates] dir line in the example config" >&2; exit 1; }
chmod 0644 "$conf"
echo "${CONFIG_FILE}" > "$root/DEBIAN/conffiles"

install -d "$root/usr/share/man/man8" "$root/usr/share/man/man5"
"$staged" man 8 | gzip -9n > "$root/usr/share/man/man8/berichtd.8.gz"
"$staged" man 5 | gzip -9n > "$root/usr/share/man/man5/berichtd.conf.5.gz"

install -d "$doc"
install -m 0644 "$here/copyright" "$doc/copyright"
for f in README.md docs/operations.md docs/privacy.md docs/statistics.md; do
	gzip -9n < "$top/$f" > "$doc/$(basename "$f").gz"
done
{
	printf 'berichtd (%s) bookworm; urgency=medium\n\n' "$debversion"
	printf '  * berichtd %s, packaged from its repository (git log for the changes).\n\n' \
		"$VERSION"
	printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc"/*

install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"

# Depends: the libraries the binary links, as Debian names their packages
shlib=$(mktemp -d)
trap 'rm -rf "$shlib"' EXIT
mkdir -p "$shlib/debian"
printf 'Source: berichtd\n\nPackage: berichtd\nArchitecture: any\n' > "$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O -e"$staged" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$debversion|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$MAINTAINER|" \
	-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" "$here/control.in" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

deb="$out/berichtd_${debversion}_${arch}.deb"
rm -f "$out"/berichtd_*.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
