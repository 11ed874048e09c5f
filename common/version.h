/*
 * version.h - the release, for `berichtd version` and berichtd_build_info.
 */
#ifndef BERICHTD_VERSION_H
#define BERICHTD_VERSION_H

#define BERICHTD_VERSION "0.1.0"

#endif
