/* fileio.h: durable file and folder primitives the store is built on. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all len bytes to fd, retrying short writes and EINTR. Returns 0
 * or -errno. */
int write_all(int fd, const void *data, size_t len);

/* Writes name in dirfd through "name.tmp": write, fsync, rename, fsync of
 * the folder, so a crash leaves the old or the new content. Returns 0 or
 * -errno. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* The same for a path: the file is written in the folder path names. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads at most max bytes of path into a NUL-terminated buffer. Returns 0,
 * -EFBIG when the file is larger than max, or -errno. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len);

/* Creates path and its missing parents. Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* Removes everything inside the folder fd refers to (not the folder).
 * Does not follow symlinks; stays on the same tree. Returns 0 or -errno. */
int rm_rf_children(int fd);

/* Removes path and everything below it; a missing path is fine. */
int rm_rf(const char *path);

/* Free bytes for unprivileged use on the filesystem holding path. */
int free_space(const char *path, uint64_t *ret);

/* The current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void iso8601_now(char *buf, size_t size);
