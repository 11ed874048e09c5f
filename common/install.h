/*
 * install.h - the version and where the package puts things. One place for
 * each: `berichtd version` prints BERICHTD_VERSION, the man pages name the
 * paths, and the Makefile's `make deb` reads these three lines (so the
 * package's file name, control file and staged tree follow them).
 */
#ifndef BERICHTD_INSTALL_H
#define BERICHTD_INSTALL_H

#define BERICHTD_VERSION "0.1.0"
#define BERICHTD_CONFIG_FILE "/etc/berichtd/berichtd.conf"
/* migrations/ and templates/ of the package */
#define BERICHTD_DATADIR "/usr/share/berichtd"

#endif
