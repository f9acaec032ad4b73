/* unpack.h: safe extraction of a package archive into an empty slot
 * folder, with libarchive, and reading slot.ini out of an archive. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "reason.h"

typedef struct UnpackLimits {
        uint64_t max_unpacked_size; /* sum of regular file sizes */
        uint64_t max_entries;
        uint64_t min_free_space; /* bytes that must stay free on the slot's filesystem */
} UnpackLimits;

/* Called once when the archive's root slot.ini has been read (at most
 * 64 KiB), before any further entry is written; a negative return aborts
 * the unpacking with that error (the callee fills reason). */
typedef int (*unpack_meta_fn)(const char *ini, size_t len, void *userdata, Reason *reason);
/* Called now and then while unpacking, and once at the end. */
typedef void (*unpack_progress_fn)(uint64_t entries, uint64_t bytes, void *userdata);

/* Unpacks the archive read from fd (tar; gzip, xz, zstd, bzip2 or none)
 * into dest_dir, which must exist and be empty. Every rule of the package
 * contract is checked per entry: no absolute path, no "..", no symlink or
 * hard link leaving dest_dir, only regular files, folders, symlinks and hard
 * links; setuid/setgid dropped; owner not restored; limits enforced; free
 * space checked before and during. Returns 0; -EPERM for an unsafe entry,
 * -EFBIG past a limit, -EBADMSG for a corrupt or truncated archive, -ENOENT
 * when the archive has no root slot.ini (all rejections), -ENOSPC when free
 * space runs short, other -errno on I/O errors. On failure dest_dir holds a
 * partial tree that the caller empties. Does not sync. */
int unpack_archive_fd(int fd, const char *dest_dir, const UnpackLimits *limits,
                      unpack_meta_fn meta_cb, unpack_progress_fn progress_cb, void *userdata,
                      Reason *reason);

/* Reads the root slot.ini of the archive read from fd without writing
 * anything. Returns 0 with a NUL-terminated copy, -ENOENT when absent,
 * -EBADMSG for a corrupt archive, -EFBIG when slot.ini exceeds 64 KiB. */
int unpack_read_slot_ini(int fd, char **ret_ini, size_t *ret_len, Reason *reason);
