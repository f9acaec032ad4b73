/* package.h: a package file: its detached signature, checked before any
 * parser sees a byte, and its slot.ini metadata. */
#pragma once

#include <stdint.h>

#include "minisign.h"
#include "reason.h"
#include "store.h"

typedef struct PackageMeta {
        char name[128];
        char version[VERSION_MAX];
} PackageMeta;

/* Parses slot.ini text: [package] name and version (SemVer 2.0.0), and
 * checks name equals compatible. Returns 0, or -EBADMSG (a rejection:
 * malformed, missing key, invalid version, other name). */
int package_meta_parse(const char *ini, size_t len, const char *compatible, PackageMeta *ret,
                       Reason *reason);

/* Opens path read-only and verifies its detached minisign signature
 * sig_path (NULL: "<path>.minisig") with the keyring. Returns 0 with an fd
 * positioned at offset 0; a rejection when the signature does not verify,
 * is missing or malformed, or the file exceeds max_size; -errno when the
 * file cannot be read. */
int package_open_verified(const char *path, const char *sig_path, const MinisignKeyring *kr,
                          uint64_t max_size, int *ret_fd, Reason *reason);
