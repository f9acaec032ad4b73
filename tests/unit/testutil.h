/* testutil.h: the small file and process helpers the unit tests share.
 * Header-only: each test program is one .c file linked with the libraries
 * under test. Temporary trees are removed with rm_rf() of slots/fileio.h. */
#pragma once

#include <errno.h>
#include <fcntl.h>
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

#include "cleanup.h"

/* base/name into buf; a path that does not fit fails the test. */
static inline char *join(char *buf, size_t size, const char *base, const char *name) {
        int n = snprintf(buf, size, "%s/%s", base, name);
        assert_true(n > 0 && (size_t) n < size);
        return buf;
}

/* Writes len bytes to path (created 0644, truncated). 0 or -1. */
static inline int write_file(const char *path, const void *data, size_t len) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        return write(fd, data, len) == (ssize_t) len ? 0 : -1;
}

/* Writes text to path; a failure fails the test. */
static inline void put(const char *path, const char *text) {
        assert_int_equal(write_file(path, text, strlen(text)), 0);
}

static inline bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static inline bool is_dir(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The whole file, NUL-terminated, in a new buffer; its length in
 * *ret_len when not NULL. A failure fails the test. */
static inline char *read_file(const char *path, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        char *buf = malloc((size_t) st.st_size + 1);
        assert_non_null(buf);
        assert_int_equal(read(fd, buf, (size_t) st.st_size), st.st_size);
        buf[st.st_size] = '\0';
        if (ret_len)
                *ret_len = (size_t) st.st_size;
        return buf;
}

static inline char *slurp(const char *path) {
        return read_file(path, NULL);
}

/* Runs argv (a program from PATH, no shell) with its standard streams on
 * /dev/null; returns its exit status, or -1. */
static inline int run(const char *const argv[]) {
        int status;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        _exit(126);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
