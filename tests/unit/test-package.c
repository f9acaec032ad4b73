/* test-package.c: a package's slot.ini metadata, and opening a package file
 * only after its detached signature verifies, with keys and signatures made
 * by the stock minisign tool in a temporary folder. */
#include <errno.h>
#include <fcntl.h>
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

#include "fileio.h"
#include "testutil.h"

#include "cleanup.h"
#include "minisign.h"
#include "package.h"

#define COMPATIBLE "translator-worker"
#define PACKAGE_SIZE 70000
#define FD_UNTOUCHED (-77)

static char tmpdir[64];

static const char *at(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned next;
        return join(bufs[next++ % ELEMENTSOF(bufs)], PATH_MAX, tmpdir, name);
}

static uint8_t package[PACKAGE_SIZE];

static int sign(const char *sec, const char *file) {
        const char *argv[] = {"minisign", "-S", "-s", sec, "-m", file, NULL};
        return run(argv);
}

static int group_setup(void **state) {
        uint32_t x = 0x9e3779b9u;

        (void) state;
        (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-package-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        const char *trusted[] = {"minisign",        "-G", "-W", "-p", at("trusted.pub"), "-s",
                                 at("trusted.sec"), NULL};
        const char *other[] = {"minisign",      "-G", "-W", "-p", at("other.pub"), "-s",
                               at("other.sec"), NULL};
        if (run(trusted) != 0 || run(other) != 0)
                return -1;

        /* Bytes that stand in for a compressed tarball. */
        for (size_t i = 0; i < sizeof(package); i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                package[i] = (uint8_t) x;
        }
        if (write_file(at("translator-worker-1.1.0.tar.zst"), package, sizeof(package)) < 0 ||
            sign(at("trusted.sec"), at("translator-worker-1.1.0.tar.zst")) != 0)
                return -1;
        return 0;
}

static int group_teardown(void **state) {
        (void) state;
        return rm_rf(tmpdir);
}

static MinisignKeyring *keyring(const char *path) {
        MinisignKeyring *kr = NULL;
        Reason reason = REASON_NULL;
        assert_int_equal(minisign_keyring_load(path, &kr, &reason), 0);
        return kr;
}

/* Parses a NUL-terminated slot.ini against COMPATIBLE. */
static int meta(const char *ini, PackageMeta *ret, Reason *reason) {
        return package_meta_parse(ini, strlen(ini), COMPATIBLE, ret, reason);
}

static void assert_rejected(int r, const Reason *reason, const char *needle) {
        assert_int_equal(r, -EBADMSG);
        assert_true(reason->rejected);
        if (!strstr(reason->text, needle))
                fail_msg("reason \"%s\" does not mention \"%s\"", reason->text, needle);
}

static void test_package_meta_good(void **state) {
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        memset(&m, 0, sizeof(m));
        assert_int_equal(
                meta("[package]\nname = translator-worker\nversion = 1.1.0\n", &m, &reason), 0);
        assert_string_equal(m.name, COMPATIBLE);
        assert_string_equal(m.version, "1.1.0");
        assert_false(reason.rejected);

        /* Comments, blank lines, key order and a pre-release are all fine. */
        assert_int_equal(meta("; built by CI\n\n[package]\nversion = 2.0.0-rc.1+b.7 ; signed\n"
                              "name=translator-worker\n",
                              &m, &reason),
                         0);
        assert_string_equal(m.name, COMPATIBLE);
        assert_string_equal(m.version, "2.0.0-rc.1+b.7");
}

static void test_package_meta_missing_name(void **state) {
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        strcpy(m.name, "untouched");
        assert_rejected(meta("[package]\nversion = 1.1.0\n", &m, &reason), &reason, "name");
        /* Out-parameters are written only on success. */
        assert_string_equal(m.name, "untouched");
}

static void test_package_meta_missing_version(void **state) {
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        assert_rejected(meta("[package]\nname = translator-worker\n", &m, &reason), &reason,
                        "version");
        assert_null(strstr(reason.text, "name"));
}

static void test_package_meta_invalid_version(void **state) {
        static const char *const bad[] = {"1.0", "v1.1.0", "1.1.0-", "01.1.0", "latest"};
        char ini[128];
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void) snprintf(ini, sizeof(ini),
                                "[package]\nname = translator-worker\n"
                                "version = %s\n",
                                bad[i]);
                reason = (Reason) REASON_NULL;
                int r = meta(ini, &m, &reason);
                assert_rejected(r, &reason, "version");
                /* The operator sees the value that was refused. */
                assert_rejected(r, &reason, bad[i]);
        }
}

static void test_package_meta_other_name_rejected(void **state) {
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        int r = meta("[package]\nname = other-service\nversion = 1.1.0\n", &m, &reason);
        assert_rejected(r, &reason, "other-service");
        assert_rejected(r, &reason, COMPATIBLE);

        /* A name that only starts like the expected one is another name. */
        reason = (Reason) REASON_NULL;
        r = meta("[package]\nname = translator-worker-beta\nversion = 1.1.0\n", &m, &reason);
        assert_rejected(r, &reason, "translator-worker-beta");
        reason = (Reason) REASON_NULL;
        r = meta("[package]\nname = translator\nversion = 1.1.0\n", &m, &reason);
        assert_rejected(r, &reason, "translator");
}

static void test_package_meta_other_sections_ignored(void **state) {
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        /* Keys of the same names elsewhere neither count nor get checked. */
        assert_int_equal(meta("[build]\nname = something-else\nversion = not-semver\n"
                              "[package]\nname = translator-worker\nversion = 1.1.0\n"
                              "[deps]\nversion = >= 2\nname = libfoo\n",
                              &m, &reason),
                         0);
        assert_string_equal(m.name, COMPATIBLE);
        assert_string_equal(m.version, "1.1.0");

        /* ...nor stand in for [package] when it lacks them. */
        reason = (Reason) REASON_NULL;
        assert_rejected(meta("[build]\nname = translator-worker\nversion = 1.1.0\n", &m, &reason),
                        &reason, "name");
}

static void test_package_meta_not_text_rejected(void **state) {
        static const char ini[] = "[package]\nname = translator-worker\0\nversion = 1.1.0\n";
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        assert_int_equal(package_meta_parse(ini, sizeof(ini) - 1, COMPATIBLE, &m, &reason),
                         -EBADMSG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "slot.ini"));
}

static void test_package_meta_reads_only_len_bytes(void **state) {
        static const char good[] = "[package]\nname = translator-worker\nversion = 1.1.0\n";
        PackageMeta m;
        Reason reason = REASON_NULL;

        (void) state;
        /* A buffer holding exactly the file, no terminating NUL after it. */
        char *buf = malloc(strlen(good));
        assert_non_null(buf);
        memcpy(buf, good, strlen(good));
        assert_int_equal(package_meta_parse(buf, strlen(good), COMPATIBLE, &m, &reason), 0);
        assert_string_equal(m.version, "1.1.0");
        free(buf);

        /* What lies past len is not part of slot.ini. */
        static const char longer[] = "[package]\nname = translator-worker\nversion = 1.1.0\n"
                                     "version = garbage\n";
        assert_int_equal(package_meta_parse(longer, strlen(good), COMPATIBLE, &m, &reason), 0);
        assert_string_equal(m.version, "1.1.0");
}

static void test_package_open_verified_good(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;
        static uint8_t back[PACKAGE_SIZE + 1];

        (void) state;
        assert_int_equal(package_open_verified(at("translator-worker-1.1.0.tar.zst"), NULL, kr,
                                               PACKAGE_SIZE, &fd, &reason),
                         0);
        assert_true(fd >= 0);
        /* At offset 0: the archive reader gets the whole file from the start. */
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
        assert_int_equal(read(fd, back, sizeof(back)), PACKAGE_SIZE);
        assert_memory_equal(back, package, PACKAGE_SIZE);
        /* Read-only: nothing can write the verified bytes through it. */
        assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        (void) close(fd);

        /* An explicit signature path works the same. */
        fd = FD_UNTOUCHED;
        assert_int_equal(package_open_verified(at("translator-worker-1.1.0.tar.zst"),
                                               at("translator-worker-1.1.0.tar.zst.minisig"), kr,
                                               UINT64_MAX, &fd, &reason),
                         0);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
        (void) close(fd);
}

static void test_package_open_verified_tampered_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;
        static uint8_t changed[PACKAGE_SIZE];

        (void) state;
        memcpy(changed, package, sizeof(changed));
        changed[PACKAGE_SIZE / 2] ^= 0x20;
        assert_int_equal(write_file(at("tampered.tar.zst"), changed, sizeof(changed)), 0);
        assert_int_equal(
                run((const char *const[]){"cp", at("translator-worker-1.1.0.tar.zst.minisig"),
                                          at("tampered.tar.zst.minisig"), NULL}),
                0);

        int r = package_open_verified(at("tampered.tar.zst"), NULL, kr, UINT64_MAX, &fd, &reason);
        assert_int_equal(r, -EBADMSG);
        assert_true(reason.rejected);
        assert_true(reason.text[0] != '\0');
        assert_int_equal(fd, FD_UNTOUCHED);
}

static void test_package_open_verified_untrusted_key_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;

        (void) state;
        assert_int_equal(write_file(at("foreign.tar.zst"), package, sizeof(package)), 0);
        assert_int_equal(sign(at("other.sec"), at("foreign.tar.zst")), 0);
        int r = package_open_verified(at("foreign.tar.zst"), NULL, kr, UINT64_MAX, &fd, &reason);
        assert_true(r < 0);
        assert_true(reason.rejected);
        assert_int_equal(fd, FD_UNTOUCHED);

        /* The same file verifies once its key is trusted. */
        _cleanup_(minisign_keyring_freep) MinisignKeyring *other = keyring(at("other.pub"));
        assert_int_equal(
                package_open_verified(at("foreign.tar.zst"), NULL, other, UINT64_MAX, &fd, &reason),
                0);
        (void) close(fd);
}

static void test_package_open_verified_missing_sig_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;

        (void) state;
        assert_int_equal(write_file(at("unsigned.tar.zst"), package, sizeof(package)), 0);
        int r = package_open_verified(at("unsigned.tar.zst"), NULL, kr, UINT64_MAX, &fd, &reason);
        assert_true(r < 0);
        assert_true(reason.rejected);
        /* The operator is told which signature file was looked for. */
        if (!strstr(reason.text, at("unsigned.tar.zst.minisig")))
                fail_msg("reason \"%s\" does not name the signature path", reason.text);
        assert_int_equal(fd, FD_UNTOUCHED);

        /* Likewise for an explicit path. */
        reason = (Reason) REASON_NULL;
        r = package_open_verified(at("translator-worker-1.1.0.tar.zst"), at("nowhere.minisig"), kr,
                                  UINT64_MAX, &fd, &reason);
        assert_true(r < 0);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, at("nowhere.minisig")));
        assert_int_equal(fd, FD_UNTOUCHED);
}

static void test_package_open_verified_too_large_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;

        (void) state;
        /* Validly signed, but one byte past max_package_size. */
        int r = package_open_verified(at("translator-worker-1.1.0.tar.zst"), NULL, kr,
                                      PACKAGE_SIZE - 1, &fd, &reason);
        assert_int_equal(r, -EFBIG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, at("translator-worker-1.1.0.tar.zst")));
        assert_int_equal(fd, FD_UNTOUCHED);
}

static void test_package_open_verified_folder_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;

        (void) state;
        assert_int_equal(mkdir(at("folder.tar.zst"), 0755), 0);
        int r = package_open_verified(at("folder.tar.zst"), NULL, kr, UINT64_MAX, &fd, &reason);
        assert_true(r < 0);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, at("folder.tar.zst")));
        assert_int_equal(fd, FD_UNTOUCHED);
}

static void test_package_open_verified_missing_file_fails(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("trusted.pub"));
        Reason reason = REASON_NULL;
        int fd = FD_UNTOUCHED;

        (void) state;
        int r = package_open_verified(at("absent.tar.zst"), NULL, kr, UINT64_MAX, &fd, &reason);
        assert_int_equal(r, -ENOENT);
        assert_non_null(strstr(reason.text, at("absent.tar.zst")));
        assert_int_equal(fd, FD_UNTOUCHED);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_package_meta_good),
                cmocka_unit_test(test_package_meta_missing_name),
                cmocka_unit_test(test_package_meta_missing_version),
                cmocka_unit_test(test_package_meta_invalid_version),
                cmocka_unit_test(test_package_meta_other_name_rejected),
                cmocka_unit_test(test_package_meta_other_sections_ignored),
                cmocka_unit_test(test_package_meta_not_text_rejected),
                cmocka_unit_test(test_package_meta_reads_only_len_bytes),
                cmocka_unit_test(test_package_open_verified_good),
                cmocka_unit_test(test_package_open_verified_tampered_rejected),
                cmocka_unit_test(test_package_open_verified_untrusted_key_rejected),
                cmocka_unit_test(test_package_open_verified_missing_sig_rejected),
                cmocka_unit_test(test_package_open_verified_too_large_rejected),
                cmocka_unit_test(test_package_open_verified_folder_rejected),
                cmocka_unit_test(test_package_open_verified_missing_file_fails),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
