/* test-unpack.c: unpacking package archives (slots/unpack.c). Every archive
 * is crafted here with libarchive's write API, written to a temporary folder
 * and unpacked into an empty slot folder beside a sentinel path that must
 * never appear. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "testutil.h"

#include "cleanup.h"
#include "fileio.h"
#include "unpack.h"

#define SLOT_INI_TEXT "[package]\nname = demo\nversion = 1.0.0\n"
#define BIG_SIZE (3U * 1024U * 1024U + 123U)

enum { K_FILE, K_DIR, K_SYMLINK, K_HARDLINK, K_CHR, K_BLK, K_FIFO };
enum { F_NONE, F_GZIP, F_XZ, F_ZSTD, F_BZIP2 };

typedef struct TestEntry {
        const char *path;
        int kind;
        mode_t perm;
        const char *data; /* file content (NULL: `size` pattern bytes) or link target */
        size_t size;
        int64_t uid;
} TestEntry;

typedef struct Fixture {
        char root[256];
        char dest[512];
        char archive[512];
        char sentinel[512];
        int meta_calls;
        char *meta_text;
        size_t meta_len;
        int meta_ret;
        unsigned progress_calls;
        uint64_t progress_entries;
        uint64_t progress_bytes;
} Fixture;

static const UnpackLimits default_limits = {
        .max_unpacked_size = UINT64_C(64) << 20,
        .max_entries = 1000,
        .min_free_space = 0,
};

static void fill_pattern(char *buf, size_t size, unsigned seed) {
        uint32_t x = seed * 2654435761U + 1;
        for (size_t i = 0; i < size; i++) {
                x = x * 1103515245U + 12345U;
                /* 16 letters: compresses, but not to nothing. */
                buf[i] = (char) ('a' + ((x >> 16) & 0x0f));
        }
}

static void write_archive_filter(const char *file, int filter, const TestEntry *entries, size_t n) {
        struct archive *a = archive_write_new();
        assert_non_null(a);
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        switch (filter) {
        case F_GZIP:
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
                break;
        case F_XZ:
                assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
                assert_int_equal(archive_write_set_filter_option(a, "xz", "compression-level", "1"),
                                 ARCHIVE_OK);
                break;
        case F_ZSTD:
                assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
                break;
        case F_BZIP2:
                assert_int_equal(archive_write_add_filter_bzip2(a), ARCHIVE_OK);
                break;
        default:
                assert_int_equal(archive_write_add_filter_none(a), ARCHIVE_OK);
                break;
        }
        assert_int_equal(archive_write_open_filename(a, file), ARCHIVE_OK);

        for (size_t i = 0; i < n; i++) {
                const TestEntry *t = &entries[i];
                struct archive_entry *e = archive_entry_new();
                char *data = NULL;
                size_t size = 0;

                assert_non_null(e);
                archive_entry_set_pathname(e, t->path);
                archive_entry_set_perm(e, t->perm);
                archive_entry_set_uid(e, t->uid);
                archive_entry_set_gid(e, t->uid);
                if (t->uid != 0) {
                        archive_entry_set_uname(e, "someone");
                        archive_entry_set_gname(e, "someone");
                }
                archive_entry_set_mtime(e, 1700000000, 0);
                switch (t->kind) {
                case K_FILE:
                        archive_entry_set_filetype(e, AE_IFREG);
                        if (t->data) {
                                size = strlen(t->data);
                                data = strdup(t->data);
                        } else {
                                size = t->size;
                                data = malloc(size ? size : 1);
                                assert_non_null(data);
                                fill_pattern(data, size, (unsigned) i);
                        }
                        archive_entry_set_size(e, (la_int64_t) size);
                        break;
                case K_DIR:
                        archive_entry_set_filetype(e, AE_IFDIR);
                        break;
                case K_SYMLINK:
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, t->data);
                        break;
                case K_HARDLINK:
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, t->data);
                        archive_entry_set_size(e, 0);
                        break;
                case K_CHR:
                        archive_entry_set_filetype(e, AE_IFCHR);
                        archive_entry_set_rdev(e, makedev(1, 3));
                        break;
                case K_BLK:
                        archive_entry_set_filetype(e, AE_IFBLK);
                        archive_entry_set_rdev(e, makedev(7, 0));
                        break;
                case K_FIFO:
                        archive_entry_set_filetype(e, AE_IFIFO);
                        break;
                }
                assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
                if (size > 0)
                        assert_int_equal(archive_write_data(a, data, size), (la_ssize_t) size);
                free(data);
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        assert_int_equal(archive_write_free(a), ARCHIVE_OK);
}

static void write_archive(Fixture *f, const TestEntry *entries, size_t n) {
        write_archive_filter(f->archive, F_NONE, entries, n);
}

static int meta_record(const char *ini, size_t len, void *userdata, Reason *reason) {
        Fixture *f = userdata;

        f->meta_calls++;
        free(f->meta_text);
        f->meta_text = strndup(ini, len);
        f->meta_len = len;
        if (f->meta_ret < 0)
                return reason_reject(reason, f->meta_ret, "package name does not match");
        return 0;
}

static void progress_record(uint64_t entries, uint64_t bytes, void *userdata) {
        Fixture *f = userdata;

        /* Reports never go backwards. */
        assert_true(entries >= f->progress_entries);
        assert_true(bytes >= f->progress_bytes);
        f->progress_calls++;
        f->progress_entries = entries;
        f->progress_bytes = bytes;
}

static int unpack_limits(Fixture *f, const UnpackLimits *limits, Reason *reason) {
        int fd = open(f->archive, O_RDONLY | O_CLOEXEC);
        int r;

        assert_true(fd >= 0);
        r = unpack_archive_fd(fd, f->dest, limits, meta_record, progress_record, f, reason);
        close(fd);
        return r;
}

static int unpack(Fixture *f, Reason *reason) {
        return unpack_limits(f, &default_limits, reason);
}

static char *path_in(const Fixture *f, const char *name, char buf[static PATH_MAX]) {
        snprintf(buf, PATH_MAX, "%s/%s", f->dest, name);
        return buf;
}

static void assert_file(const Fixture *f, const char *name, const char *text, mode_t mode) {
        char p[PATH_MAX];
        struct stat st;
        size_t len;
        char *got;

        path_in(f, name, p);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, mode);
        assert_int_equal(st.st_uid, geteuid());
        got = read_file(p, &len);
        assert_int_equal(len, strlen(text));
        assert_string_equal(got, text);
        free(got);
}

static void assert_symlink(const Fixture *f, const char *name, const char *target) {
        char p[PATH_MAX], buf[PATH_MAX];
        ssize_t n;

        n = readlink(path_in(f, name, p), buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, target);
}

static void assert_absent(const Fixture *f, const char *name) {
        char p[PATH_MAX];
        struct stat st;

        assert_int_equal(lstat(path_in(f, name, p), &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void assert_sentinel_absent(const Fixture *f) {
        struct stat st;

        assert_int_equal(lstat(f->sentinel, &st), -1);
        assert_int_equal(errno, ENOENT);
}

/* A rejection of the input, with a reason that quotes `needle`. */
static void assert_rejected(int r, int err, const Reason *reason, const char *needle) {
        if (r != err || !strstr(reason->text, needle))
                print_error("got %d (%s), expected %d mentioning \"%s\"\n", r, reason->text, err,
                            needle);
        assert_int_equal(r, err);
        assert_true(reason->rejected);
        assert_non_null(strstr(reason->text, needle));
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        assert_non_null(f);
        snprintf(f->root, sizeof(f->root), "%s/test-unpack-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(f->root));
        snprintf(f->dest, sizeof(f->dest), "%s/slot", f->root);
        snprintf(f->archive, sizeof(f->archive), "%s/pkg.tar", f->root);
        snprintf(f->sentinel, sizeof(f->sentinel), "%s/sentinel", f->root);
        assert_int_equal(mkdir(f->dest, 0755), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        /* rm_rf() opens up read-only folders a package may hold. */
        assert_int_equal(rm_rf(f->root), 0);
        free(f->meta_text);
        free(f);
        return 0;
}

static const TestEntry good_entries[] = {
        {.path = "./", .kind = K_DIR, .perm = 0755},
        {.path = "./slot.ini", .kind = K_FILE, .perm = 0644, .data = SLOT_INI_TEXT},
        {.path = "bin/", .kind = K_DIR, .perm = 0755},
        {.path = "bin/tool", .kind = K_FILE, .perm = 0755, .data = "#!/bin/sh\necho hi\n"},
        {.path = "bin/tool-again", .kind = K_HARDLINK, .perm = 0755, .data = "./bin/tool"},
        {.path = "etc/", .kind = K_DIR, .perm = 0750},
        {.path = "etc/app.conf", .kind = K_FILE, .perm = 0640, .data = "key = value\n"},
        {.path = "lib/libdemo.so.1", .kind = K_FILE, .perm = 0644, .size = BIG_SIZE},
        {.path = "lib/libdemo.so", .kind = K_SYMLINK, .perm = 0777, .data = "libdemo.so.1"},
        {.path = "share/", .kind = K_DIR, .perm = 0755},
        {.path = "share/lib", .kind = K_SYMLINK, .perm = 0777, .data = "../lib"},
        {.path = "share/empty", .kind = K_FILE, .perm = 0600, .data = ""},
        {.path = "./data//nested/./file.txt", .kind = K_FILE, .perm = 0444, .data = "nested\n"},
};

static void check_good(Fixture *f, int filter) {
        Reason reason = REASON_NULL;
        char cwd_before[PATH_MAX], cwd_after[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
        struct stat st, st2;
        char *expect, *got;
        size_t len;

        write_archive_filter(f->archive, filter, good_entries, ELEMENTSOF(good_entries));
        assert_non_null(getcwd(cwd_before, sizeof(cwd_before)));

        assert_int_equal(unpack(f, &reason), 0);

        /* The working folder is given back. */
        assert_non_null(getcwd(cwd_after, sizeof(cwd_after)));
        assert_string_equal(cwd_before, cwd_after);

        assert_int_equal(f->meta_calls, 1);
        assert_string_equal(f->meta_text, SLOT_INI_TEXT);
        assert_int_equal(f->meta_len, strlen(SLOT_INI_TEXT));

        assert_file(f, "slot.ini", SLOT_INI_TEXT, 0644);
        assert_file(f, "bin/tool", "#!/bin/sh\necho hi\n", 0755);
        assert_file(f, "etc/app.conf", "key = value\n", 0640);
        assert_file(f, "share/empty", "", 0600);
        assert_file(f, "data/nested/file.txt", "nested\n", 0444);

        assert_int_equal(stat(path_in(f, "bin/tool", p), &st), 0);
        assert_int_equal(stat(path_in(f, "bin/tool-again", q), &st2), 0);
        assert_int_equal(st.st_ino, st2.st_ino);

        assert_int_equal(lstat(path_in(f, "etc", p), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);

        expect = malloc(BIG_SIZE);
        assert_non_null(expect);
        fill_pattern(expect, BIG_SIZE, 7);
        got = read_file(path_in(f, "lib/libdemo.so.1", p), &len);
        assert_int_equal(len, BIG_SIZE);
        assert_memory_equal(got, expect, BIG_SIZE);
        free(got);
        free(expect);

        assert_symlink(f, "lib/libdemo.so", "libdemo.so.1");
        assert_symlink(f, "share/lib", "../lib");
        /* Both links resolve inside the slot, to the file unpacked there. */
        assert_int_equal(stat(path_in(f, "share/lib/libdemo.so", p), &st), 0);
        assert_int_equal(stat(path_in(f, "lib/libdemo.so.1", q), &st2), 0);
        assert_int_equal(st.st_ino, st2.st_ino);

        /* The "./" entry names the slot itself, which keeps its own mode. */
        assert_int_equal(stat(f->dest, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);

        assert_true(f->progress_calls >= 3);
        assert_int_equal(f->progress_entries, ELEMENTSOF(good_entries));
        assert_int_equal(f->progress_bytes, strlen(SLOT_INI_TEXT) + strlen("#!/bin/sh\necho hi\n") +
                                                    strlen("key = value\n") + BIG_SIZE +
                                                    strlen("nested\n"));
        assert_sentinel_absent(f);
}

static void test_unpack_good_gzip(void **state) {
        check_good(*state, F_GZIP);
}

static void test_unpack_good_zstd_without_external_program(void **state) {
        char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

        /* With no program to be found, only built-in zstd can decompress. */
        assert_int_equal(setenv("PATH", "/nonexistent", 1), 0);
        check_good(*state, F_ZSTD);
        if (path)
                assert_int_equal(setenv("PATH", path, 1), 0);
        free(path);
}

static void test_unpack_good_xz(void **state) {
        check_good(*state, F_XZ);
}

static void test_unpack_good_bzip2(void **state) {
        check_good(*state, F_BZIP2);
}

static void test_unpack_good_uncompressed(void **state) {
        check_good(*state, F_NONE);
}

#define SLOT_INI_ENTRY                                                                             \
        { .path = "slot.ini", .kind = K_FILE, .perm = 0644, .data = SLOT_INI_TEXT }

static void test_unpack_absolute_path_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char needle[PATH_MAX + 32];
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = f->sentinel, .kind = K_FILE, .perm = 0644, .data = "owned\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        snprintf(needle, sizeof(needle), "absolute path \"%s\"", f->sentinel);
        assert_rejected(unpack(f, &reason), -EPERM, &reason, needle);
        assert_sentinel_absent(f);
}

static void test_unpack_dotdot_rejected(void **state) {
        Fixture *f = *state;
        const char *paths[] = {"../sentinel", "a/../../sentinel", "./a/b/../../../sentinel"};

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                Reason reason = REASON_NULL;
                TestEntry entries[] = {
                        SLOT_INI_ENTRY,
                        {.path = paths[i], .kind = K_FILE, .perm = 0644, .data = "owned\n"},
                };

                write_archive(f, entries, ELEMENTSOF(entries));
                assert_rejected(unpack(f, &reason), -EPERM, &reason, paths[i]);
                assert_non_null(strstr(reason.text, "\"..\""));
                assert_sentinel_absent(f);
                assert_absent(f, "a");
                assert_int_equal(unlink(path_in(f, "slot.ini", (char[PATH_MAX]){0})), 0);
        }
}

static void test_unpack_reason_escapes_control_characters(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "a\033[2J/../../sentinel", .kind = K_FILE, .perm = 0644, .data = "x"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "\"a?[2J/../../sentinel\"");
        assert_null(strchr(reason.text, '\033'));
        assert_sentinel_absent(f);
}

static void test_unpack_symlink_absolute_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "etc", .kind = K_SYMLINK, .perm = 0777, .data = "/etc"},
                {.path = "etc/slotd-test", .kind = K_FILE, .perm = 0644, .data = "owned\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "symlink \"etc\" -> \"/etc\"");
        assert_absent(f, "etc");
        assert_int_equal(access("/etc/slotd-test", F_OK), -1);
}

static void test_unpack_symlink_leaving_rejected(void **state) {
        Fixture *f = *state;
        struct {
                const char *link, *target, *through;
        } cases[] = {
                {"esc", "../../x", "esc/sentinel"},
                {"up", "..", "up/sentinel"},
                {"a/b", "../..", "a/b/sentinel"},
                {"a/b/c", "./../../../sentinel", "a/b/d"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reason reason = REASON_NULL;
                char needle[256];
                TestEntry entries[] = {
                        SLOT_INI_ENTRY,
                        {.path = cases[i].link,
                         .kind = K_SYMLINK,
                         .perm = 0777,
                         .data = cases[i].target},
                        {.path = cases[i].through, .kind = K_FILE, .perm = 0644, .data = "x\n"},
                };

                write_archive(f, entries, ELEMENTSOF(entries));
                snprintf(needle, sizeof(needle), "symlink \"%s\" -> \"%s\" leaves the slot",
                         cases[i].link, cases[i].target);
                assert_rejected(unpack(f, &reason), -EPERM, &reason, needle);
                assert_absent(f, cases[i].link);
                assert_sentinel_absent(f);
                assert_int_equal(unlink(path_in(f, "slot.ini", (char[PATH_MAX]){0})), 0);
                (void) rmdir(path_in(f, "a/b", (char[PATH_MAX]){0}));
                (void) rmdir(path_in(f, "a", (char[PATH_MAX]){0}));
        }
}

static void test_unpack_symlink_inside_through_another_symlink_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        /* "d/y/../.." is the slot's root read lexically, but d/y is the slot
         * itself, so the kernel would walk two levels above it. */
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "d/", .kind = K_DIR, .perm = 0755},
                {.path = "d/y", .kind = K_SYMLINK, .perm = 0777, .data = ".."},
                {.path = "x", .kind = K_SYMLINK, .perm = 0777, .data = "d/y/../.."},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "symlink \"x\" -> \"d/y/../..\"");
        assert_absent(f, "x");
}

static void test_unpack_hardlink_absolute_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "passwd", .kind = K_HARDLINK, .perm = 0644, .data = "/etc/passwd"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason,
                        "hard link \"passwd\" -> \"/etc/passwd\" is absolute");
        assert_absent(f, "passwd");
}

static void test_unpack_hardlink_dotdot_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char target[PATH_MAX];
        struct stat st;
        FILE *fp;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "hl", .kind = K_HARDLINK, .perm = 0644, .data = "../target"},
        };

        snprintf(target, sizeof(target), "%s/target", f->root);
        fp = fopen(target, "we");
        assert_non_null(fp);
        fclose(fp);

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason,
                        "hard link \"hl\" -> \"../target\" contains \"..\"");
        assert_absent(f, "hl");
        assert_int_equal(stat(target, &st), 0);
        assert_int_equal(st.st_nlink, 1);
}

static void test_unpack_hardlink_to_symlink_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        /* a/b/l resolves to the slot's root; a copy of it at the root would
         * resolve two levels above the slot. */
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "a/b/l", .kind = K_SYMLINK, .perm = 0777, .data = "../../sentinel"},
                {.path = "l2", .kind = K_HARDLINK, .perm = 0777, .data = "a/b/l"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason,
                        "hard link \"l2\" -> \"a/b/l\" does not name a regular file");
        assert_absent(f, "l2");
}

static void test_unpack_hardlink_to_slot_ini_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "alias", .kind = K_HARDLINK, .perm = 0644, .data = "./slot.ini"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "hard link \"alias\" -> slot.ini");
        assert_absent(f, "alias");
}

static void test_unpack_second_slot_ini_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "./slot.ini", .kind = K_FILE, .perm = 0644, .data = "[package]\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "a second slot.ini");
        assert_file(f, "slot.ini", SLOT_INI_TEXT, 0644);
}

static void test_unpack_special_files_rejected(void **state) {
        Fixture *f = *state;
        struct {
                TestEntry entry;
                const char *needle;
        } cases[] = {
                {{.path = "dev/null", .kind = K_CHR, .perm = 0666},
                 "\"dev/null\" is a character device"},
                {{.path = "dev/loop0", .kind = K_BLK, .perm = 0660},
                 "\"dev/loop0\" is a block device"},
                {{.path = "run/fifo", .kind = K_FIFO, .perm = 0600}, "\"run/fifo\" is a FIFO"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reason reason = REASON_NULL;
                TestEntry entries[] = {SLOT_INI_ENTRY, cases[i].entry};

                write_archive(f, entries, ELEMENTSOF(entries));
                assert_rejected(unpack(f, &reason), -EPERM, &reason, cases[i].needle);
                assert_absent(f, cases[i].entry.path);
                assert_int_equal(unlink(path_in(f, "slot.ini", (char[PATH_MAX]){0})), 0);
        }
}

static void test_unpack_write_through_symlink_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        /* Each entry passes the checks alone; archive_write_disk refuses to
         * follow the symlink, and that is a rejection naming the entry. */
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "sub/", .kind = K_DIR, .perm = 0755},
                {.path = "l", .kind = K_SYMLINK, .perm = 0777, .data = "sub"},
                {.path = "l/x", .kind = K_FILE, .perm = 0644, .data = "x\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EPERM, &reason, "cannot unpack \"l/x\"");
        assert_absent(f, "sub/x");
}

static void test_unpack_setuid_setgid_dropped(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char p[PATH_MAX];
        struct stat st;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "shared/", .kind = K_DIR, .perm = 02775},
                {.path = "bin/su", .kind = K_FILE, .perm = 04755, .data = "su\n"},
                {.path = "bin/sg", .kind = K_FILE, .perm = 06711, .data = "sg\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_int_equal(unpack(f, &reason), 0);
        assert_file(f, "bin/su", "su\n", 0755);
        assert_file(f, "bin/sg", "sg\n", 0711);
        assert_int_equal(stat(path_in(f, "shared", p), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0775);
}

static void test_unpack_owner_is_current_user(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char p[PATH_MAX];
        struct stat st;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "theirs/", .kind = K_DIR, .perm = 0755, .uid = 1234},
                {.path = "theirs/file", .kind = K_FILE, .perm = 0644, .data = "x\n", .uid = 1234},
                {.path = "theirs/link",
                 .kind = K_SYMLINK,
                 .perm = 0777,
                 .data = "file",
                 .uid = 1234},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_int_equal(unpack(f, &reason), 0);
        assert_int_equal(lstat(path_in(f, "theirs", p), &st), 0);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(st.st_gid, getegid());
        assert_int_equal(lstat(path_in(f, "theirs/file", p), &st), 0);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(st.st_gid, getegid());
        assert_int_equal(lstat(path_in(f, "theirs/link", p), &st), 0);
        assert_int_equal(st.st_uid, geteuid());
}

static void test_unpack_size_limit(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        UnpackLimits limits = default_limits;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "one", .kind = K_FILE, .perm = 0644, .size = 600},
                {.path = "two", .kind = K_FILE, .perm = 0644, .size = 600},
        };

        limits.max_unpacked_size = 1000;
        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack_limits(f, &limits, &reason), -EFBIG, &reason,
                        "more than 1000 bytes");
        assert_absent(f, "two");

        /* The same archive fits a limit of its exact size. */
        assert_int_equal(unlink(path_in(f, "slot.ini", (char[PATH_MAX]){0})), 0);
        assert_int_equal(unlink(path_in(f, "one", (char[PATH_MAX]){0})), 0);
        limits.max_unpacked_size = 1200 + strlen(SLOT_INI_TEXT);
        assert_int_equal(unpack_limits(f, &limits, &reason), 0);
}

static void test_unpack_entry_limit(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        UnpackLimits limits = default_limits;
        TestEntry entries[10];
        char names[10][16];

        entries[0] = (TestEntry) SLOT_INI_ENTRY;
        for (size_t i = 1; i < ELEMENTSOF(entries); i++) {
                snprintf(names[i], sizeof(names[i]), "file%zu", i);
                entries[i] =
                        (TestEntry){.path = names[i], .kind = K_FILE, .perm = 0644, .data = "x"};
        }
        limits.max_entries = 5;
        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack_limits(f, &limits, &reason), -EFBIG, &reason, "more than 5 entries");
        assert_absent(f, "file5");
}

static void test_unpack_free_space_checked_before(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        UnpackLimits limits = default_limits;
        TestEntry entries[] = {SLOT_INI_ENTRY};

        limits.min_free_space = UINT64_MAX;
        write_archive(f, entries, ELEMENTSOF(entries));
        assert_int_equal(unpack_limits(f, &limits, &reason), -ENOSPC);
        assert_false(reason.rejected);
        assert_non_null(strstr(reason.text, "free space"));
        assert_absent(f, "slot.ini");
        assert_int_equal(f->meta_calls, 0);
}

static void check_truncated(Fixture *f, int filter, off_t shift) {
        Reason reason = REASON_NULL;
        char cwd_before[PATH_MAX], cwd_after[PATH_MAX];
        struct stat st;
        TestEntry entries[] = {
                SLOT_INI_ENTRY,
                {.path = "a", .kind = K_FILE, .perm = 0644, .size = 300000},
                {.path = "b", .kind = K_FILE, .perm = 0644, .size = 300000},
        };

        write_archive_filter(f->archive, filter, entries, ELEMENTSOF(entries));
        assert_int_equal(stat(f->archive, &st), 0);
        assert_int_equal(truncate(f->archive, st.st_size / 2 + shift), 0);
        assert_non_null(getcwd(cwd_before, sizeof(cwd_before)));
        assert_rejected(unpack(f, &reason), -EBADMSG, &reason, "corrupt package archive");
        assert_non_null(getcwd(cwd_after, sizeof(cwd_after)));
        assert_string_equal(cwd_before, cwd_after);
}

static void test_unpack_truncated_between_entries(void **state) {
        /* Half of this uncompressed archive ends exactly after "a": only the
         * missing end-of-archive marker tells it from a complete one. */
        check_truncated(*state, F_NONE, 0);
}

static void test_unpack_truncated_in_data(void **state) {
        check_truncated(*state, F_NONE, 4000);
}

static void test_unpack_truncated_zstd(void **state) {
        check_truncated(*state, F_ZSTD, 0);
}

static void test_unpack_garbage_rejected(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        FILE *fp = fopen(f->archive, "we");
        char junk[4096];

        assert_non_null(fp);
        fill_pattern(junk, sizeof(junk), 3);
        assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
        fclose(fp);
        assert_rejected(unpack(f, &reason), -EBADMSG, &reason, "corrupt package archive");
}

static void test_unpack_no_slot_ini(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                {.path = "sub/slot.ini", .kind = K_FILE, .perm = 0644, .data = SLOT_INI_TEXT},
                {.path = "other", .kind = K_FILE, .perm = 0644, .data = "x\n"},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -ENOENT, &reason,
                        "package has no slot.ini at its root");
        assert_int_equal(f->meta_calls, 0);
}

static void test_unpack_slot_ini_too_big(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                {.path = "slot.ini", .kind = K_FILE, .perm = 0644, .size = 64 * 1024 + 1},
        };

        write_archive(f, entries, ELEMENTSOF(entries));
        assert_rejected(unpack(f, &reason), -EFBIG, &reason, "slot.ini");
        assert_int_equal(f->meta_calls, 0);
}

static void test_unpack_meta_abort_stops_before_later_entries(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {
                {.path = "first.txt", .kind = K_FILE, .perm = 0644, .data = "1\n"},
                SLOT_INI_ENTRY,
                {.path = "later.txt", .kind = K_FILE, .perm = 0644, .data = "2\n"},
        };

        f->meta_ret = -EPROTO;
        write_archive(f, entries, ELEMENTSOF(entries));
        assert_int_equal(unpack(f, &reason), -EPROTO);
        assert_string_equal(reason.text, "package name does not match");
        assert_int_equal(f->meta_calls, 1);
        assert_string_equal(f->meta_text, SLOT_INI_TEXT);
        assert_file(f, "first.txt", "1\n", 0644);
        assert_absent(f, "later.txt");
}

static void test_unpack_dest_not_empty(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        TestEntry entries[] = {SLOT_INI_ENTRY};

        assert_int_equal(mkdir(path_in(f, "left-over", (char[PATH_MAX]){0}), 0755), 0);
        write_archive(f, entries, ELEMENTSOF(entries));
        assert_int_equal(unpack(f, &reason), -ENOTEMPTY);
        assert_absent(f, "slot.ini");
}

static int read_slot_ini(Fixture *f, char **ret, size_t *ret_len, Reason *reason) {
        int fd = open(f->archive, O_RDONLY | O_CLOEXEC);
        int r;

        assert_true(fd >= 0);
        r = unpack_read_slot_ini(fd, ret, ret_len, reason);
        close(fd);
        return r;
}

static void test_unpack_read_slot_ini_not_first(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char cwd[PATH_MAX];
        char *ini = NULL;
        size_t len = 0;
        TestEntry entries[] = {
                {.path = "a", .kind = K_FILE, .perm = 0644, .size = 200000},
                {.path = "b/", .kind = K_DIR, .perm = 0755},
                {.path = "b/slot.ini", .kind = K_FILE, .perm = 0644, .data = "[package]\n"},
                {.path = "./slot.ini", .kind = K_FILE, .perm = 0644, .data = SLOT_INI_TEXT},
                {.path = "c", .kind = K_FILE, .perm = 0644, .data = "c\n"},
        };

        write_archive_filter(f->archive, F_ZSTD, entries, ELEMENTSOF(entries));
        /* Run from inside the empty slot folder: nothing may land there. */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(f->dest), 0);
        assert_int_equal(read_slot_ini(f, &ini, &len, &reason), 0);
        assert_int_equal(chdir(cwd), 0);

        assert_non_null(ini);
        assert_int_equal(len, strlen(SLOT_INI_TEXT));
        assert_string_equal(ini, SLOT_INI_TEXT);
        free(ini);
        assert_absent(f, "a");
        assert_absent(f, "b");
        assert_absent(f, "slot.ini");
}

static void test_unpack_read_slot_ini_errors(void **state) {
        Fixture *f = *state;
        Reason reason = REASON_NULL;
        char *ini = NULL;
        size_t len = 0;
        struct stat st;
        TestEntry none[] = {
                {.path = "sub/slot.ini", .kind = K_FILE, .perm = 0644, .data = SLOT_INI_TEXT},
        };
        TestEntry big[] = {
                {.path = "slot.ini", .kind = K_FILE, .perm = 0644, .size = 64 * 1024 + 1},
        };
        TestEntry late[] = {
                {.path = "a", .kind = K_FILE, .perm = 0644, .size = 300000},
                SLOT_INI_ENTRY,
        };

        write_archive(f, none, ELEMENTSOF(none));
        assert_rejected(read_slot_ini(f, &ini, &len, &reason), -ENOENT, &reason,
                        "no slot.ini at its root");

        write_archive(f, big, ELEMENTSOF(big));
        assert_rejected(read_slot_ini(f, &ini, &len, &reason), -EFBIG, &reason, "64 KiB");

        write_archive_filter(f->archive, F_GZIP, late, ELEMENTSOF(late));
        assert_int_equal(stat(f->archive, &st), 0);
        assert_int_equal(truncate(f->archive, st.st_size / 2), 0);
        assert_rejected(read_slot_ini(f, &ini, &len, &reason), -EBADMSG, &reason,
                        "corrupt package archive");
        assert_null(ini);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unpack_good_gzip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_good_zstd_without_external_program,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_good_xz, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_good_bzip2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_good_uncompressed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_absolute_path_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_dotdot_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_reason_escapes_control_characters,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_symlink_absolute_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_symlink_leaving_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_unpack_symlink_inside_through_another_symlink_rejected, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_unpack_hardlink_absolute_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_hardlink_dotdot_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_hardlink_to_symlink_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_hardlink_to_slot_ini_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_second_slot_ini_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_special_files_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_write_through_symlink_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_setuid_setgid_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_owner_is_current_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_size_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_entry_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_free_space_checked_before, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_truncated_between_entries, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_truncated_in_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_truncated_zstd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_garbage_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_no_slot_ini, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_slot_ini_too_big, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_meta_abort_stops_before_later_entries,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_dest_not_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unpack_read_slot_ini_not_first, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unpack_read_slot_ini_errors, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
