/* test-fileio.c: the durable file primitives the store is built on, in a
 * temporary folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "cleanup.h"
#include "fileio.h"

#define NOBODY 65534

static char tmpdir[64];

/* base/name into buf; a path that does not fit fails the test. */
static const char *at(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned next;
        return join(bufs[next++ % ELEMENTSOF(bufs)], PATH_MAX, tmpdir, name);
}

/* Number of entries in a folder, "." and ".." not counted. */
static int count_entries(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        int n = 0;
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        (void) closedir(d);
        return n;
}

static int make_writable(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) ftw;
        if (flag == FTW_D || flag == FTW_DNR)
                (void) chmod(path, 0700);
        (void) st;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

/* Independent of the code under test, and copes with 0555 folders. */
static int remove_tree(const char *path) {
        if (!exists(path))
                return 0;
        (void) chmod(path, 0700);
        (void) nftw(path, make_writable, 16, FTW_PHYS);
        return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
        (void) state;
        (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-fileio-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        return remove_tree(tmpdir);
}

static void test_fileio_atomic_write_creates_file(void **state) {
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        (void) state;
        assert_true(dfd >= 0);
        (void) umask(022);
        assert_int_equal(write_file_atomic_at(dfd, "state.json", "{\"a\":1}\n", 8, 0600), 0);
        _cleanup_free_ char *text = slurp(at("state.json"));
        assert_string_equal(text, "{\"a\":1}\n");
        assert_int_equal(stat(at("state.json"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* Only the file itself is left behind. */
        assert_int_equal(count_entries(tmpdir), 1);
}

static void test_fileio_atomic_write_replaces_content(void **state) {
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const char longer[] = "an old content that is longer than the new one\n";

        (void) state;
        assert_true(dfd >= 0);
        put(at("state.json"), longer);
        assert_int_equal(write_file_atomic_at(dfd, "state.json", "new", 3, 0644), 0);
        _cleanup_free_ char *text = slurp(at("state.json"));
        /* Replaced whole, not overwritten in place: no tail of the old text. */
        assert_string_equal(text, "new");
        assert_int_equal(count_entries(tmpdir), 1);

        /* A reader holding the old file keeps seeing the old file. */
        _cleanup_close_ int old = open(at("state.json"), O_RDONLY | O_CLOEXEC);
        assert_true(old >= 0);
        assert_int_equal(write_file_atomic_at(dfd, "state.json", "", 0, 0644), 0);
        char buf[8] = "";
        assert_int_equal(read(old, buf, sizeof(buf) - 1), 3);
        assert_string_equal(buf, "new");
        _cleanup_free_ char *empty = slurp(at("state.json"));
        assert_string_equal(empty, "");
        assert_int_equal(count_entries(tmpdir), 1);
}

static void test_fileio_atomic_write_replaces_symlink_not_target(void **state) {
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        (void) state;
        assert_true(dfd >= 0);
        put(at("elsewhere"), "precious");
        assert_int_equal(symlink(at("elsewhere"), at("state.json")), 0);
        assert_int_equal(write_file_atomic_at(dfd, "state.json", "fresh", 5, 0644), 0);
        assert_int_equal(lstat(at("state.json"), &st), 0);
        assert_true(S_ISREG(st.st_mode));
        _cleanup_free_ char *kept = slurp(at("elsewhere"));
        assert_string_equal(kept, "precious");
}

static void test_fileio_atomic_write_failure_keeps_old_content(void **state) {
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char name[400];

        (void) state;
        assert_true(dfd >= 0);
        put(at("state.json"), "old");
        /* A bad fd: nothing is written anywhere. */
        assert_true(write_file_atomic_at(-1, "state.json", "new", 3, 0644) < 0);
        /* A name too long for the folder. */
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_true(write_file_atomic_at(dfd, name, "new", 3, 0644) < 0);
        _cleanup_free_ char *text = slurp(at("state.json"));
        assert_string_equal(text, "old");
        assert_int_equal(count_entries(tmpdir), 1);
}

static void test_fileio_read_bounded_limit(void **state) {
        char *text = NULL;
        size_t len = 0;

        (void) state;
        put(at("ten"), "0123456789");
        assert_int_equal(read_file_bounded(at("ten"), 10, &text, &len), 0);
        assert_int_equal(len, 10);
        assert_string_equal(text, "0123456789");
        free(text);

        text = NULL;
        len = 77;
        assert_int_equal(read_file_bounded(at("ten"), 9, &text, &len), -EFBIG);
        /* Out-parameters are written only on success. */
        assert_null(text);
        assert_int_equal(len, 77);

        assert_int_equal(read_file_bounded(at("ten"), 0, &text, &len), -EFBIG);
        put(at("empty"), "");
        assert_int_equal(read_file_bounded(at("empty"), 0, &text, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(text, "");
        free(text);
}

static void test_fileio_read_bounded_stream_past_limit(void **state) {
        int p[2];
        char path[64], data[100];
        char *text = NULL;

        (void) state;
        /* A pipe has no size to check up front: the limit holds while reading. */
        assert_int_equal(pipe(p), 0);
        memset(data, 'x', sizeof(data));
        assert_int_equal(write(p[1], data, sizeof(data)), (ssize_t) sizeof(data));
        (void) close(p[1]);
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
        assert_int_equal(read_file_bounded(path, 50, &text, NULL), -EFBIG);
        assert_null(text);
        (void) close(p[0]);

        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], data, 50), 50);
        (void) close(p[1]);
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
        size_t len = 0;
        assert_int_equal(read_file_bounded(path, 50, &text, &len), 0);
        assert_int_equal(len, 50);
        assert_int_equal(strlen(text), 50);
        free(text);
        (void) close(p[0]);
}

static void test_fileio_read_bounded_errors(void **state) {
        char *text = NULL;

        (void) state;
        assert_int_equal(read_file_bounded(at("missing"), 100, &text, NULL), -ENOENT);
        assert_int_equal(read_file_bounded(tmpdir, 100, &text, NULL), -EISDIR);
        assert_null(text);
}

/* Builds tree/{file, ro/{f1, deeper/{f2}}, link -> outside}, with ro and
 * ro/deeper mode 0555. */
static void make_tree(const char *tree, const char *outside) {
        char p[PATH_MAX];

        assert_int_equal(mkdir(tree, 0755), 0);
        join(p, sizeof(p), tree, "file");
        put(p, "x");
        join(p, sizeof(p), tree, "ro");
        assert_int_equal(mkdir(p, 0755), 0);
        join(p, sizeof(p), tree, "ro/f1");
        put(p, "x");
        join(p, sizeof(p), tree, "ro/deeper");
        assert_int_equal(mkdir(p, 0755), 0);
        join(p, sizeof(p), tree, "ro/deeper/f2");
        put(p, "x");
        join(p, sizeof(p), tree, "link");
        assert_int_equal(symlink(outside, p), 0);
        join(p, sizeof(p), tree, "ro/deeper");
        assert_int_equal(chmod(p, 0555), 0);
        join(p, sizeof(p), tree, "ro");
        assert_int_equal(chmod(p, 0555), 0);
}

/* The checks of the read-only tree case, returning a code instead of
 * asserting: it also runs in a child process without privileges. */
static int rm_rf_readonly_tree(const char *base) {
        char tree[PATH_MAX], outside[PATH_MAX], keep[PATH_MAX];

        join(tree, sizeof(tree), base, "tree");
        join(outside, sizeof(outside), base, "outside");
        join(keep, sizeof(keep), base, "outside/keep");
        if (mkdir(outside, 0755) < 0)
                return 10;
        put(keep, "keep");
        make_tree(tree, outside);

        int r = rm_rf(tree);
        if (r < 0) {
                fprintf(stderr, "rm_rf: %s\n", strerror(-r));
                return 11;
        }
        if (exists(tree))
                return 12;
        /* The symlink went, not what it pointed at. */
        if (!exists(keep))
                return 13;
        /* A missing path is fine. */
        if (rm_rf(tree) != 0)
                return 14;
        return 0;
}

static void test_fileio_rm_rf_readonly_subfolder(void **state) {
        (void) state;
        if (geteuid() != 0) {
                assert_int_equal(rm_rf_readonly_tree(tmpdir), 0);
                return;
        }

        /* root writes into 0555 folders anyway; an unprivileged user cannot,
         * and that is the case a package with read-only folders puts to us. */
        char base[PATH_MAX];
        join(base, sizeof(base), tmpdir, "unpriv");
        assert_int_equal(mkdir(base, 0755), 0);
        assert_int_equal(chown(base, NOBODY, NOBODY), 0);
        assert_int_equal(chmod(tmpdir, 0755), 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                        _exit(99);
                _exit(rm_rf_readonly_tree(base));
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_fileio_rm_rf_file_and_missing(void **state) {
        (void) state;
        put(at("plain"), "x");
        assert_int_equal(rm_rf(at("plain")), 0);
        assert_false(exists(at("plain")));
        assert_int_equal(rm_rf(at("never-was")), 0);
        /* A symlink to a folder is removed, the folder kept. */
        assert_int_equal(mkdir(at("dir"), 0755), 0);
        put(at("dir/keep"), "x");
        assert_int_equal(symlink(at("dir"), at("dirlink")), 0);
        assert_int_equal(rm_rf(at("dirlink")), 0);
        assert_false(exists(at("dirlink")));
        assert_true(exists(at("dir/keep")));
}

static void test_fileio_rm_rf_children_keeps_folder(void **state) {
        (void) state;
        assert_int_equal(mkdir(at("slot"), 0755), 0);
        put(at("slot/a"), "x");
        assert_int_equal(mkdir(at("slot/sub"), 0755), 0);
        put(at("slot/sub/b"), "x");
        put(at("slot/.hidden"), "x");
        _cleanup_close_ int fd = open(at("slot"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(rm_rf_children(fd), 0);
        assert_true(exists(at("slot")));
        assert_int_equal(count_entries(at("slot")), 0);
}

static void test_fileio_mkdir_p(void **state) {
        struct stat st;

        (void) state;
        assert_int_equal(mkdir_p(at("x/y/z"), 0755), 0);
        assert_int_equal(stat(at("x/y/z"), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* Existing folders are fine, a trailing slash too. */
        assert_int_equal(mkdir_p(at("x/y/z"), 0755), 0);
        assert_int_equal(mkdir_p(at("x/y/w/"), 0755), 0);
        assert_int_equal(stat(at("x/y/w"), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* A file in the way is an error, not success. */
        put(at("x/file"), "x");
        assert_int_equal(mkdir_p(at("x/file"), 0755), -ENOTDIR);
        assert_int_equal(mkdir_p(at("x/file/sub"), 0755), -ENOTDIR);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fileio_atomic_write_creates_file, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_fileio_atomic_write_replaces_content, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_fileio_atomic_write_replaces_symlink_not_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fileio_atomic_write_failure_keeps_old_content,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_fileio_read_bounded_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fileio_read_bounded_stream_past_limit, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_fileio_read_bounded_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fileio_rm_rf_readonly_subfolder, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_fileio_rm_rf_file_and_missing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_fileio_rm_rf_children_keeps_folder, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_fileio_mkdir_p, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
