/* unpack.c: owns turning a package archive into a slot's tree on disk, and
 * reading slot.ini out of an archive.
 *
 * Two lines of defence. Every entry is checked here first, against the
 * package contract (SPEC.md section 4), so a refused archive comes back with
 * a reason naming the entry; only then is it handed to archive_write_disk,
 * whose SECURE_* flags catch whatever slipped through (such as extracting
 * through a symlink an earlier entry planted), and whose error is reported as
 * a rejection too.
 *
 * Why the symlink rule is stricter than "resolves inside lexically": a target
 * such as "d/y/../.." resolves lexically to the slot's root, but when "d/y" is
 * itself a symlink to ".." the kernel walks out of the slot. Allowing ".."
 * only as leading components, applied to the entry's own folder (a real
 * folder, since nothing is ever extracted through a symlink), makes every
 * symlink in the slot resolve inside it, whatever other symlinks it crosses.
 * For the same reason a hard link may only point at a regular file: linking
 * to a symlink would re-anchor its relative target in another folder.
 *
 * slot.ini is checked by the caller (meta_cb) before it reaches the disk and
 * must stay what was checked: a second root slot.ini, a hard link onto it, or
 * a path that would turn it into a folder is refused. */
#include "unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "archivedl.h"
#include "cleanup.h"
#include "fileio.h"

#define SLOT_INI "slot.ini"
#define SLOT_INI_MAX (64U * 1024U)
/* libarchive reads the fd in blocks of this size; large enough that an
 * uncompressed archive costs few read() calls, small enough to stay bounded. */
#define READ_BLOCK_SIZE (128U * 1024U)
#define INFLATE_CHUNK (256U * 1024U)
#define PIPE_SIZE (1024 * 1024)
#define SPACE_CHECK_BYTES (UINT64_C(16) << 20)
#define PROGRESS_BYTES (UINT64_C(1) << 20)
#define PROGRESS_ENTRIES UINT64_C(64)
#define SHOWN_MAX 160

/* The owner is never restored (the slot belongs to the agent's user), nor
 * ACLs, xattrs or file flags; modes and times are. */
#define EXTRACT_FLAGS                                                                              \
        (ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |                       \
         ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME)

static struct archive *archive_read_unref(struct archive *a) {
        if (a)
                (void) archive_read_free(a);
        return NULL;
}
DEFINE_CLEANUP_FUNC(struct archive *, archive_read_unref)

static struct archive *archive_write_unref(struct archive *a) {
        if (a)
                (void) archive_write_free(a);
        return NULL;
}
DEFINE_CLEANUP_FUNC(struct archive *, archive_write_unref)

typedef struct Unpacker {
        struct archive *reader;
        struct archive *writer;
        int dest_fd;
        const UnpackLimits *limits;
        unpack_meta_fn meta_cb;
        unpack_progress_fn progress_cb;
        void *userdata;
        Reason *reason;

        /* Normalised entry path and hard link target, reused across entries. */
        char *path;
        size_t path_size;
        char *link;
        size_t link_size;

        uint64_t n_entries;
        uint64_t declared_bytes;
        uint64_t written_bytes;
        uint64_t next_space_check;
        uint64_t space_left; /* free bytes at the last look, less what was written since */
        uint64_t reported_entries;
        uint64_t reported_bytes;

        bool have_slot_ini;
        dev_t slot_ini_dev;
        ino_t slot_ini_ino;
} Unpacker;

/* Entry names come from the archive: keep control characters and excessive
 * length out of the log line the reason ends up in. */
static const char *shown(const char *s, char buf[static SHOWN_MAX]) {
        char *q = buf, *end = buf + SHOWN_MAX - 4;

        for (; *s != '\0' && q < end; s++) {
                unsigned char c = (unsigned char) *s;
                *q++ = c < 0x20 || c == 0x7f ? '?' : (char) c;
        }
        if (*s != '\0') {
                memcpy(q, "...", 3);
                q += 3;
        }
        *q = '\0';
        return buf;
}

static int grow(char **buf, size_t *size, size_t need) {
        char *p;

        if (*size >= need)
                return 0;
        p = realloc(*buf, need);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *size = need;
        return 0;
}

/* Writes `in` without empty and "." components (so "./a//b/" becomes "a/b",
 * and "./" becomes "") into *buf. Returns 0, -EPERM when a component is "..",
 * -ENOMEM. The caller has refused absolute paths already. */
static int path_normalise(const char *in, char **buf, size_t *size) {
        size_t n = 0;
        const char *p = in;

        if (grow(buf, size, strlen(in) + 1) < 0)
                return -ENOMEM;

        while (*p != '\0') {
                size_t len = strcspn(p, "/");

                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EPERM;
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (n > 0)
                                (*buf)[n++] = '/';
                        memcpy(*buf + n, p, len);
                        n += len;
                }
                p += len;
                if (*p == '/')
                        p++;
        }
        (*buf)[n] = '\0';
        return 0;
}

typedef enum SymlinkVerdict {
        SYMLINK_INSIDE,
        SYMLINK_LEAVES,
        SYMLINK_DOTDOT_AFTER_NAME,
} SymlinkVerdict;

/* Judges a relative symlink target read from the folder of `path` (a
 * normalised entry path); see the note at the top for why ".." may only
 * lead. */
static SymlinkVerdict symlink_verdict(const char *path, const char *target) {
        uint64_t depth = 0, up = 0;
        bool named = false;

        for (const char *p = path; *p != '\0'; p++)
                if (*p == '/')
                        depth++;

        for (const char *p = target; *p != '\0';) {
                size_t len = strcspn(p, "/");

                if (len == 2 && p[0] == '.' && p[1] == '.') {
                        if (named)
                                return SYMLINK_DOTDOT_AFTER_NAME;
                        if (++up > depth)
                                return SYMLINK_LEAVES;
                } else if (len > 0 && !(len == 1 && p[0] == '.'))
                        named = true;
                p += len;
                if (*p == '/')
                        p++;
        }
        return SYMLINK_INSIDE;
}

static const char *entry_path(struct archive_entry *e) {
        const char *s = archive_entry_pathname(e);
        return s ? s : archive_entry_pathname_utf8(e);
}

static const char *type_name(mode_t type) {
        switch (type) {
        case AE_IFCHR:
                return "character device";
        case AE_IFBLK:
                return "block device";
        case AE_IFIFO:
                return "FIFO";
        case AE_IFSOCK:
                return "socket";
        default:
                return "file of unknown type";
        }
}

static int read_error(struct archive *a, const char *name, Reason *reason) {
        int e = archive_errno(a);
        const char *msg = archive_error_string(a);
        char buf[SHOWN_MAX];

        if (!msg)
                msg = "unknown error";
        /* A failing read(2) is the operation's fault, anything else the
         * archive's. */
        if (e == EIO || e == ENOMEM || e == EBADF || e == EISDIR)
                return reason_fail(reason, -e, "failed to read package archive: %s", msg);
        if (name)
                return reason_reject(reason, -EBADMSG, "corrupt package archive: %s (at \"%s\")",
                                     msg, shown(name, buf));
        return reason_reject(reason, -EBADMSG, "corrupt package archive: %s", msg);
}

static int write_error(Unpacker *u, const char *name) {
        int e = archive_errno(u->writer);
        const char *msg = archive_error_string(u->writer);
        char buf[SHOWN_MAX];

        if (!msg)
                msg = "unknown error";
        /* Running out of room or a failing disk is not the archive's fault;
         * everything else archive_write_disk refuses (a path through a
         * symlink, a missing hard link target, a folder in the way) is. */
        if (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS || e == ENOMEM || e == EMFILE ||
            e == ENFILE)
                return reason_fail(u->reason, -e, "failed to unpack \"%s\": %s", shown(name, buf),
                                   msg);
        return reason_reject(u->reason, -EPERM, "unsafe archive: cannot unpack \"%s\": %s",
                             shown(name, buf), msg);
}

typedef enum ReaderKind {
        READER_PACKAGE,    /* the package file: decompression and tar */
        READER_DECOMPRESS, /* the package file, decompressed only (raw) */
        READER_TAR,        /* an already decompressed tar stream */
} ReaderKind;

static int reader_new(int fd, ReaderKind kind, struct archive **ret, Reason *reason) {
        const struct {
                const char *name;
                int (*enable)(struct archive *);
        } filters[] = {
                {"gzip", archive_read_support_filter_gzip},
                {"xz", archive_read_support_filter_xz},
                {"zstd", archive_read_support_filter_zstd},
                {"bzip2", archive_read_support_filter_bzip2},
                {"none", archive_read_support_filter_none},
        };
        _cleanup_(archive_read_unrefp) struct archive *a = archive_read_new();

        if (!a)
                return reason_fail(reason, -ENOMEM,
                                   "failed to read package archive: out of memory");

        /* Not archive_read_support_filter_all(): that would let an archive
         * pick a filter run as an external program. ARCHIVE_WARN from one of
         * these means this libarchive lacks the library and would fall back
         * to such a program, which must never see a package. */
        for (size_t i = kind == READER_TAR ? ELEMENTSOF(filters) - 1 : 0; i < ELEMENTSOF(filters);
             i++)
                if (filters[i].enable(a) != ARCHIVE_OK)
                        return reason_fail(reason, -EOPNOTSUPP,
                                           "failed to read package archive: libarchive has no "
                                           "built-in %s support",
                                           filters[i].name);

        /* gnutar is an alias of tar (which reads ustar, pax and GNU tar), so
         * registering it again answers ARCHIVE_WARN. */
        if (kind == READER_DECOMPRESS) {
                if (archive_read_support_format_raw(a) != ARCHIVE_OK)
                        return reason_fail(reason, -EOPNOTSUPP,
                                           "failed to read package archive: no raw support in "
                                           "libarchive");
        } else if (archive_read_support_format_tar(a) < ARCHIVE_WARN ||
                   archive_read_support_format_gnutar(a) < ARCHIVE_WARN)
                return reason_fail(reason, -EOPNOTSUPP,
                                   "failed to read package archive: no tar support in libarchive");

        if (archive_read_open_fd(a, fd, READ_BLOCK_SIZE) != ARCHIVE_OK)
                return read_error(a, NULL, reason);

        *ret = TAKE_PTR(a);
        return 0;
}

/* Returns 1 with the next entry, 0 at the end, or a negative errno. The
 * previous entry must have been read or skipped to its end, padding
 * included (archive_read_data_skip()). */
static int read_next_header(struct archive *a, struct archive_entry **ret, Reason *reason) {
        la_int64_t before = archive_filter_bytes(a, 0);
        int r = archive_read_next_header(a, ret);

        if (r == ARCHIVE_EOF) {
                /* libarchive takes input ending cleanly between two entries
                 * for the end of the archive. A tar archive ends with zero
                 * blocks, which the reader consumes: if nothing was consumed,
                 * the archive was cut short. */
                if (archive_filter_bytes(a, 0) == before)
                        return reason_reject(reason, -EBADMSG,
                                             "corrupt package archive: truncated, no "
                                             "end-of-archive marker");
                return 0;
        }
        /* ARCHIVE_WARN flags lossy metadata such as a name not convertible
         * to the locale; ARCHIVE_RETRY a damaged header, which is corrupt. */
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                return read_error(a, NULL, reason);
        return 1;
}

/* Reads the data of the root slot.ini entry, NUL-terminated. */
static int slot_ini_read(struct archive *a, struct archive_entry *e, char **ret_ini,
                         size_t *ret_len, Reason *reason) {
        _cleanup_free_ char *buf = NULL;
        int64_t size = archive_entry_size(e);
        size_t len = 0;

        if (size < 0)
                return reason_reject(reason, -EBADMSG,
                                     "corrupt package archive: " SLOT_INI " has a negative size");
        if (size > SLOT_INI_MAX)
                return reason_reject(reason, -EFBIG,
                                     SLOT_INI " is larger than 64 KiB (%" PRId64 " bytes)", size);

        buf = malloc((size_t) size + 1);
        if (!buf)
                return reason_fail(reason, -ENOMEM, "failed to read " SLOT_INI ": out of memory");

        while (len < (size_t) size) {
                /* archive_read_data() fills holes of a sparse entry with zeros. */
                la_ssize_t n = archive_read_data(a, buf + len, (size_t) size - len);

                if (n < 0)
                        return read_error(a, SLOT_INI, reason);
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len != (size_t) size)
                return reason_reject(reason, -EBADMSG,
                                     "corrupt package archive: " SLOT_INI " is truncated");
        buf[len] = '\0';

        *ret_ini = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* Checks that min_free + need bytes are free; returns 0 with what is free. */
static int check_free_space(int dest_fd, uint64_t min_free, uint64_t need, uint64_t *ret_avail,
                            Reason *reason) {
        struct statvfs sv;
        uint64_t avail;

        if (fstatvfs(dest_fd, &sv) < 0) {
                int r = negative_errno();
                return reason_fail(reason, r, "failed to check free space for the slot: %s",
                                   strerror(-r));
        }
        avail = (uint64_t) sv.f_bavail * (uint64_t) sv.f_frsize;
        if (avail < min_free || avail - min_free < need)
                return reason_fail(reason, -ENOSPC,
                                   "not enough free space to unpack the package: %" PRIu64
                                   " bytes left, %" PRIu64 " must stay free (min_free_space)",
                                   avail, min_free);
        *ret_avail = avail;
        return 0;
}

static void progress(Unpacker *u, bool final) {
        if (!u->progress_cb)
                return;
        if (!final && u->n_entries - u->reported_entries < PROGRESS_ENTRIES &&
            u->written_bytes - u->reported_bytes < PROGRESS_BYTES)
                return;
        u->reported_entries = u->n_entries;
        u->reported_bytes = u->written_bytes;
        u->progress_cb(u->n_entries, u->written_bytes, u->userdata);
}

/* Accounts for `n` bytes about to be written. */
static int account_written(Unpacker *u, size_t n) {
        u->written_bytes += n;
        if (u->written_bytes > u->limits->max_unpacked_size)
                return reason_reject(u->reason, -EFBIG,
                                     "package unpacks to more than %" PRIu64
                                     " bytes, the max_unpacked_size",
                                     u->limits->max_unpacked_size);
        /* What was free at the last look, less what was written since,
         * must cover this write and min_free_space; a fresh look now and
         * then also sees what others wrote meanwhile. */
        if (u->written_bytes >= u->next_space_check ||
            u->space_left < u->limits->min_free_space + n) {
                int r = check_free_space(u->dest_fd, u->limits->min_free_space, n, &u->space_left,
                                         u->reason);
                if (r < 0)
                        return r;
                u->next_space_check = u->written_bytes + SPACE_CHECK_BYTES;
        }
        u->space_left -= n;
        return 0;
}

/* Checks one entry against the package contract and rewrites it for
 * extraction relative to the slot: normalised path and hard link target,
 * setuid/setgid cleared. Returns 1 when the entry is the slot's root folder
 * itself (nothing to write), 0 to go on, or a negative errno. */
static int entry_check(Unpacker *u, struct archive_entry *e) {
        char b1[SHOWN_MAX], b2[SHOWN_MAX];
        const char *name = entry_path(e), *hardlink, *symlink;
        mode_t type = archive_entry_filetype(e);
        int r;

        if (!name || name[0] == '\0')
                return reason_reject(u->reason, -EBADMSG,
                                     "corrupt package archive: entry without a name");
        if (name[0] == '/')
                return reason_reject(u->reason, -EPERM, "unsafe archive: absolute path \"%s\"",
                                     shown(name, b1));
        r = path_normalise(name, &u->path, &u->path_size);
        if (r == -EPERM)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: path \"%s\" contains \"..\"",
                                     shown(name, b1));
        if (r < 0)
                return reason_fail(u->reason, r, "failed to unpack package: out of memory");

        /* archive_write_disk tells links apart by their link names, not by
         * the file type, so judge them the same way. */
        hardlink = archive_entry_hardlink(e);
        if (!hardlink)
                hardlink = archive_entry_hardlink_utf8(e);
        symlink = hardlink ? NULL : archive_entry_symlink(e);
        if (!hardlink && !symlink && type == AE_IFLNK) {
                symlink = archive_entry_symlink_utf8(e);
                if (!symlink || symlink[0] == '\0')
                        return reason_reject(u->reason, -EBADMSG,
                                             "corrupt package archive: symlink \"%s\" has no "
                                             "target",
                                             shown(name, b1));
                /* Only the locale conversion failed: hand write_disk the
                 * bytes as stored rather than an entry without a target. */
                archive_entry_copy_symlink(e, symlink);
                symlink = archive_entry_symlink(e);
        }

        if (!hardlink && !symlink && type != AE_IFREG && type != AE_IFDIR)
                return reason_reject(u->reason, -EPERM, "unsafe archive: \"%s\" is a %s",
                                     shown(name, b1), type_name(type));

        if (u->path[0] == '\0') {
                if (hardlink || symlink || type != AE_IFDIR)
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: \"%s\" names the slot itself but "
                                             "is not a folder",
                                             shown(name, b1));
                return 1;
        }

        if (strncmp(u->path, SLOT_INI "/", strlen(SLOT_INI "/")) == 0)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: \"%s\" would turn " SLOT_INI " into a folder",
                                     shown(name, b1));

        if (symlink) {
                if (symlink[0] == '/')
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: symlink \"%s\" -> \"%s\" is "
                                             "absolute",
                                             shown(name, b1), shown(symlink, b2));
                switch (symlink_verdict(u->path, symlink)) {
                case SYMLINK_LEAVES:
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: symlink \"%s\" -> \"%s\" leaves "
                                             "the slot",
                                             shown(name, b1), shown(symlink, b2));
                case SYMLINK_DOTDOT_AFTER_NAME:
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: symlink \"%s\" -> \"%s\" has "
                                             "\"..\" after a name, so it may leave the slot "
                                             "through another symlink",
                                             shown(name, b1), shown(symlink, b2));
                case SYMLINK_INSIDE:
                        break;
                }
        }

        if (hardlink) {
                if (hardlink[0] == '/')
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: hard link \"%s\" -> \"%s\" is "
                                             "absolute",
                                             shown(name, b1), shown(hardlink, b2));
                r = path_normalise(hardlink, &u->link, &u->link_size);
                if (r == -EPERM)
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: hard link \"%s\" -> \"%s\" "
                                             "contains \"..\"",
                                             shown(name, b1), shown(hardlink, b2));
                if (r < 0)
                        return reason_fail(u->reason, r, "failed to unpack package: out of memory");
                if (u->link[0] == '\0')
                        return reason_reject(u->reason, -EPERM,
                                             "unsafe archive: hard link \"%s\" -> \"%s\" points "
                                             "at the slot itself",
                                             shown(name, b1), shown(hardlink, b2));
                archive_entry_copy_hardlink(e, u->link);
        }

        if (type == AE_IFREG || hardlink) {
                int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;

                if (size < 0)
                        return reason_reject(u->reason, -EBADMSG,
                                             "corrupt package archive: \"%s\" has a negative "
                                             "size",
                                             shown(name, b1));
                u->declared_bytes += (uint64_t) size;
                if (u->declared_bytes > u->limits->max_unpacked_size)
                        return reason_reject(u->reason, -EFBIG,
                                             "package unpacks to more than %" PRIu64
                                             " bytes, the max_unpacked_size (at \"%s\")",
                                             u->limits->max_unpacked_size, shown(name, b1));
        }

        /* Dropped rather than refused: harmless once cleared, and common in
         * archives made by root. */
        archive_entry_set_perm(e, archive_entry_perm(e) & ~(mode_t) (S_ISUID | S_ISGID));
        archive_entry_copy_pathname(e, u->path);
        return 0;
}

/* A hard link must name a regular file unpacked before it, and never
 * slot.ini: a hard link carrying data would rewrite the checked slot.ini. */
static int hardlink_check(Unpacker *u) {
        char b1[SHOWN_MAX], b2[SHOWN_MAX];
        struct stat st;

        if (fstatat(u->dest_fd, u->link, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: hard link \"%s\" -> \"%s\" names no file "
                                     "unpacked before it",
                                     shown(u->path, b1), shown(u->link, b2));
        if (!S_ISREG(st.st_mode))
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: hard link \"%s\" -> \"%s\" does not name a "
                                     "regular file",
                                     shown(u->path, b1), shown(u->link, b2));
        if (u->have_slot_ini && st.st_dev == u->slot_ini_dev && st.st_ino == u->slot_ini_ino)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: hard link \"%s\" -> " SLOT_INI
                                     " would let it change after it was checked",
                                     shown(u->path, b1));
        return 0;
}

static int entry_write(Unpacker *u, struct archive_entry *e) {
        bool data = archive_entry_size(e) > 0 &&
                    (archive_entry_filetype(e) == AE_IFREG || archive_entry_hardlink(e));
        int r;

        if (archive_entry_hardlink(e)) {
                r = hardlink_check(u);
                if (r < 0)
                        return r;
        }

        if (archive_write_header(u->writer, e) < ARCHIVE_WARN)
                return write_error(u, u->path);

        while (data) {
                const void *buf;
                size_t len;
                la_int64_t offset;

                r = archive_read_data_block(u->reader, &buf, &len, &offset);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return read_error(u->reader, u->path, u->reason);
                r = account_written(u, len);
                if (r < 0)
                        return r;
                /* Passing the offset lets write_disk seek over the holes of a
                 * sparse entry instead of writing zeros. */
                /* write_disk reports a failed write(2), ENOSPC included, as
                 * ARCHIVE_WARN: for data, anything but OK is an error. */
                if (archive_write_data_block(u->writer, buf, len, offset) < ARCHIVE_OK)
                        return write_error(u, u->path);
                progress(u, false);
        }

        if (archive_write_finish_entry(u->writer) < ARCHIVE_WARN)
                return write_error(u, u->path);
        return 0;
}

static int slot_ini_unpack(Unpacker *u, struct archive_entry *e) {
        _cleanup_free_ char *ini = NULL;
        struct stat st;
        size_t len;
        int r;

        if (u->have_slot_ini)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: a second " SLOT_INI " at the root");
        if (archive_entry_hardlink(e) || archive_entry_symlink(e) ||
            archive_entry_filetype(e) != AE_IFREG)
                return reason_reject(u->reason, -EPERM,
                                     "unsafe archive: " SLOT_INI " is not a regular file");

        r = slot_ini_read(u->reader, e, &ini, &len, u->reason);
        if (r < 0)
                return r;
        if (u->meta_cb) {
                r = u->meta_cb(ini, len, u->userdata, u->reason);
                if (r < 0)
                        return r;
        }

        if (archive_write_header(u->writer, e) < ARCHIVE_WARN)
                return write_error(u, SLOT_INI);
        if (len > 0) {
                r = account_written(u, len);
                if (r < 0)
                        return r;
                if (archive_write_data_block(u->writer, ini, len, 0) < ARCHIVE_OK)
                        return write_error(u, SLOT_INI);
        }
        if (archive_write_finish_entry(u->writer) < ARCHIVE_WARN)
                return write_error(u, SLOT_INI);

        /* Remembered so no hard link can be made onto it later. */
        if (fstatat(u->dest_fd, SLOT_INI, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = negative_errno();
                return reason_fail(u->reason, r, "failed to check unpacked " SLOT_INI ": %s",
                                   strerror(-r));
        }
        u->have_slot_ini = true;
        u->slot_ini_dev = st.st_dev;
        u->slot_ini_ino = st.st_ino;
        return 0;
}

/* Decompression on a thread of its own, feeding the tar reader through a
 * pipe: on two cores decompressing and writing files overlap, as with
 * `tar -x` and its separate decompressor process. */
typedef struct Inflater {
        int in_fd;
        int out_fd;
        pthread_t thread;
        Reason reason; /* the first failure of the decompression */
        int error;
} Inflater;

static void *inflater_main(void *arg) {
        Inflater *f = arg;
        struct archive *a = NULL;
        struct archive_entry *e;
        char *buf = NULL;
        sigset_t pipe_signal;

        /* A reader that stopped early (a refused entry) closes the pipe: the
         * write then fails with EPIPE instead of killing the process. */
        (void) sigemptyset(&pipe_signal);
        (void) sigaddset(&pipe_signal, SIGPIPE);
        (void) pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);

        f->error = reader_new(f->in_fd, READER_DECOMPRESS, &a, &f->reason);
        if (f->error < 0)
                goto out;
        if (archive_read_next_header(a, &e) != ARCHIVE_OK) {
                f->error = read_error(a, NULL, &f->reason);
                goto out;
        }
        buf = malloc(INFLATE_CHUNK);
        if (!buf) {
                f->error = reason_fail(&f->reason, -ENOMEM,
                                       "failed to read package archive: "
                                       "out of memory");
                goto out;
        }
        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, INFLATE_CHUNK);
                if (n == 0)
                        break;
                if (n < 0) {
                        f->error = read_error(a, NULL, &f->reason);
                        break;
                }
                if (write_all(f->out_fd, buf, (size_t) n) < 0)
                        break; /* the reader is gone; it knows why */
        }
out:
        free(buf);
        if (a)
                (void) archive_read_free(a);
        (void) close(f->out_fd); /* end of stream for the reader */
        return NULL;
}

static int unpack_stream(int fd, Unpacker *u);

/* Runs with the slot as working folder, so entry paths stay relative (as
 * SECURE_NOABSOLUTEPATHS wants). The process that unpacks (slotctl, or
 * slotd's update child) runs no other thread but the inflater, which only
 * reads an fd: nothing else sees the change (nor libarchive's brief
 * umask(0)). The writer is freed before returning, still inside the slot:
 * freeing applies the deferred folder modes and times by relative path. */
static int unpack_here(int fd, Unpacker *u) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                int r = negative_errno();
                return reason_fail(u->reason, r, "failed to unpack package: %s", strerror(-r));
        }
        (void) fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_SIZE);

        Inflater f = {.in_fd = fd, .out_fd = pipefd[1], .reason = REASON_NULL};
        int r = pthread_create(&f.thread, NULL, inflater_main, &f);
        if (r != 0) {
                (void) close(pipefd[0]);
                (void) close(pipefd[1]);
                return reason_fail(u->reason, -r, "failed to unpack package: %s", strerror(r));
        }
        r = unpack_stream(pipefd[0], u);
        (void) close(pipefd[0]);
        (void) pthread_join(f.thread, NULL);

        /* A broken compressed stream reaches the tar reader as a truncated
         * one; the decompressor's own words say more. */
        if (f.error < 0 && (r >= 0 || r == -EBADMSG)) {
                if (u->reason)
                        *u->reason = f.reason;
                return f.error;
        }
        return r;
}

static int unpack_stream(int fd, Unpacker *u) {
        _cleanup_(archive_read_unrefp) struct archive *reader = NULL;
        _cleanup_(archive_write_unrefp) struct archive *writer = NULL;
        int r;

        r = reader_new(fd, READER_TAR, &reader, u->reason);
        if (r < 0)
                return r;

        writer = archive_write_disk_new();
        if (!writer)
                return reason_fail(u->reason, -ENOMEM, "failed to unpack package: out of memory");
        /* No archive_write_disk_set_standard_lookup(): owners are not
         * restored, so user and group names need no lookup. */
        if (archive_write_disk_set_options(writer, EXTRACT_FLAGS) != ARCHIVE_OK)
                return reason_fail(u->reason, -EOPNOTSUPP, "failed to unpack package: %s",
                                   archive_error_string(writer));

        u->reader = reader;
        u->writer = writer;

        for (;;) {
                struct archive_entry *e;

                r = read_next_header(reader, &e, u->reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                if (++u->n_entries > u->limits->max_entries)
                        return reason_reject(u->reason, -EFBIG,
                                             "package has more than %" PRIu64 " entries",
                                             u->limits->max_entries);

                r = entry_check(u, e);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (strcmp(u->path, SLOT_INI) == 0)
                                r = slot_ini_unpack(u, e);
                        else
                                r = entry_write(u, e);
                        if (r < 0)
                                return r;
                }
                /* Consumes the rest and the padding, for read_next_header(). */
                if (archive_read_data_skip(reader) < ARCHIVE_WARN)
                        return read_error(reader, u->path, u->reason);
                progress(u, false);
        }

        if (!u->have_slot_ini)
                return reason_reject(u->reason, -ENOENT, "package has no " SLOT_INI " at its root");

        if (archive_write_close(writer) < ARCHIVE_WARN) {
                int e = archive_errno(writer);
                return reason_fail(u->reason, e > 0 ? -e : -EIO, "failed to finish unpacking: %s",
                                   archive_error_string(writer));
        }
        progress(u, true);
        return 0;
}

static int dir_is_empty(int dir_fd) {
        struct dirent *de;
        int fd, r = 1;
        DIR *d;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                (void) safe_close(fd);
                return r;
        }
        errno = 0;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        r = 0;
                        break;
                }
        if (r == 1 && errno != 0)
                r = negative_errno();
        (void) closedir(d);
        return r;
}

int unpack_archive_fd(int fd, const char *dest_dir, const UnpackLimits *limits,
                      unpack_meta_fn meta_cb, unpack_progress_fn progress_cb, void *userdata,
                      Reason *reason) {
        _cleanup_close_ int dest_fd = -1, cwd_fd = -1;
        Unpacker u = {
                .dest_fd = -1,
                .limits = limits,
                .meta_cb = meta_cb,
                .progress_cb = progress_cb,
                .userdata = userdata,
                .reason = reason,
                .next_space_check = SPACE_CHECK_BYTES,
        };
        int r;

        if (fd < 0 || !dest_dir || !limits)
                return reason_fail(reason, -EINVAL, "failed to unpack package: invalid arguments");
        r = archive_load(reason);
        if (r < 0)
                return r;

        dest_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dest_fd < 0) {
                r = negative_errno();
                return reason_fail(reason, r, "failed to open slot folder %s: %s", dest_dir,
                                   strerror(-r));
        }
        u.dest_fd = dest_fd;

        /* The symlink and hard link rules reason about what this archive
         * created; anything already there would escape them. */
        r = dir_is_empty(dest_fd);
        if (r < 0)
                return reason_fail(reason, r, "failed to read slot folder %s: %s", dest_dir,
                                   strerror(-r));
        if (r == 0)
                return reason_fail(reason, -ENOTEMPTY,
                                   "failed to unpack package: slot folder %s is not empty",
                                   dest_dir);

        r = check_free_space(dest_fd, limits->min_free_space, 0, &u.space_left, reason);
        if (r < 0)
                return r;

        cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd_fd < 0) {
                r = negative_errno();
                return reason_fail(reason, r, "failed to open the working folder: %s",
                                   strerror(-r));
        }
        if (fchdir(dest_fd) < 0) {
                r = negative_errno();
                return reason_fail(reason, r, "failed to enter slot folder %s: %s", dest_dir,
                                   strerror(-r));
        }

        r = unpack_here(fd, &u);
        free(u.path);
        free(u.link);

        if (fchdir(cwd_fd) < 0) {
                int k = negative_errno();
                /* Staying inside the slot would make every later relative
                 * path of the caller land in it. */
                if (r >= 0)
                        r = reason_fail(reason, k, "failed to return to the working folder: %s",
                                        strerror(-k));
        }
        return r;
}

int unpack_read_slot_ini(int fd, char **ret_ini, size_t *ret_len, Reason *reason) {
        _cleanup_(archive_read_unrefp) struct archive *a = NULL;
        _cleanup_free_ char *path = NULL;
        size_t path_size = 0;
        int r;

        if (fd < 0 || !ret_ini || !ret_len)
                return reason_fail(reason, -EINVAL,
                                   "failed to read " SLOT_INI ": invalid arguments");
        r = archive_load(reason);
        if (r < 0)
                return r;

        r = reader_new(fd, READER_PACKAGE, &a, reason);
        if (r < 0)
                return r;

        for (;;) {
                struct archive_entry *e;
                const char *name;

                r = read_next_header(a, &e, reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                name = entry_path(e);
                /* Absolute paths and ".." cannot name the root slot.ini;
                 * unpacking refuses them, here they are just not it. */
                if (name && name[0] != '/') {
                        r = path_normalise(name, &path, &path_size);
                        if (r == -ENOMEM)
                                return reason_fail(reason, r,
                                                   "failed to read " SLOT_INI ": out of memory");
                        if (r == 0 && strcmp(path, SLOT_INI) == 0) {
                                if (archive_entry_hardlink(e) || archive_entry_symlink(e) ||
                                    archive_entry_filetype(e) != AE_IFREG)
                                        return reason_reject(reason, -EPERM,
                                                             "unsafe archive: " SLOT_INI
                                                             " is not a regular file");
                                return slot_ini_read(a, e, ret_ini, ret_len, reason);
                        }
                }

                if (archive_read_data_skip(a) < ARCHIVE_WARN)
                        return read_error(a, name, reason);
        }

        return reason_reject(reason, -ENOENT, "package has no " SLOT_INI " at its root");
}
