/* test-semver.c: SemVer 2.0.0 validation and precedence, the rule that tells
 * an upgrade from a downgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "semver.h"

static int sign_of(int c) {
        return c < 0 ? -1 : c > 0;
}

/* Asserts a < b both ways round, naming the pair when it fails. */
static void assert_before(const char *a, const char *b) {
        int ab = sign_of(semver_compare(a, b)), ba = sign_of(semver_compare(b, a));
        if (ab != -1 || ba != 1)
                fail_msg("expected %s < %s, got compare(a,b)=%d compare(b,a)=%d", a, b, ab, ba);
}

static void assert_same_precedence(const char *a, const char *b) {
        int ab = semver_compare(a, b), ba = semver_compare(b, a);
        if (ab != 0 || ba != 0)
                fail_msg("expected %s == %s, got %d and %d", a, b, ab, ba);
}

static void test_semver_valid_versions_accepted(void **state) {
        static const char *const good[] = {
                "0.0.0",
                "0.0.4",
                "1.2.3",
                "10.20.30",
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-0.3.7",
                "1.0.0-x.7.z.92",
                "1.0.0-x-y-z.--",
                "1.0.0-0A.is.legal",  /* alphanumeric may start with 0 */
                "1.0.0-alpha0.valid", /* digits inside an alphanumeric */
                "1.0.0-rc.0",         /* a lone 0 is a number */
                "1.0.0+20130313144700",
                "1.0.0-beta+exp.sha.5114f85",
                "1.0.0+21AF26D3----117B344092BD",
                "1.0.0+001", /* build identifiers may have leading zeros */
                "1.0.0-rc.1+build.1-2",
                "2.0.0-rc.1+build.123",
                "1.1.2-prerelease+meta",
                "99999999999999999999999.999999999999999999.99999999999999999",
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (!semver_valid(good[i]))
                        fail_msg("\"%s\" is valid SemVer 2.0.0 but was refused", good[i]);
}

static void test_semver_invalid_versions_refused(void **state) {
        static const char *const bad[] = {
                "",
                "1",
                "1.0",
                "1.2",
                "1.2.3.4",
                "v1.0.0",
                "V1.0.0",
                "01.0.0",
                "1.01.0",
                "1.0.01",
                "00.0.0",
                "1.0.0-",
                "1.0.0+",
                "1.0.0-+build",
                "1.0.0-01", /* numeric pre-release with a leading zero */
                "1.0.0-rc.01",
                "1.2.3-0123.0123",
                "1.0.0-alpha..1", /* empty identifiers */
                "1.0.0-alpha.",
                "1.0.0-.alpha",
                "1.0.0+build..1",
                "1.0.0+.build",
                "1.0.0+build.",
                "1.1.2+.123",
                "9.8.7+meta+meta",
                ".1.0.0",
                "1..0",
                "1.0.",
                "1.0.0.",
                "-1.0.0",
                "+1.0.0",
                "1.0.0-alpha_beta",
                "1.0.0-al pha",
                "1.0.0 ",
                " 1.0.0",
                "1.0.0\n",
                "a.b.c",
                "1.2.3.DEV",
                "1.2-SNAPSHOT",
                "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
                "1.0.0-\xc3\xa9", /* non-ASCII */
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (semver_valid(bad[i]))
                        fail_msg("\"%s\" is not valid SemVer 2.0.0 but was accepted", bad[i]);
        assert_false(semver_valid(NULL));
}

static void test_semver_length_limit_128_bytes(void **state) {
        char v[200];

        (void) state;
        /* "1.0.0-" plus letters: exactly 128 bytes is fine, 129 is not. */
        memset(v, 'a', sizeof(v));
        memcpy(v, "1.0.0-", 6);
        v[128] = '\0';
        assert_int_equal(strlen(v), 128);
        assert_true(semver_valid(v));

        memset(v, 'a', sizeof(v));
        memcpy(v, "1.0.0-", 6);
        v[129] = '\0';
        assert_false(semver_valid(v));

        /* Build metadata counts towards the limit as well. */
        memset(v, 'b', sizeof(v));
        memcpy(v, "1.0.0+", 6);
        v[128] = '\0';
        assert_true(semver_valid(v));
        v[128] = 'b';
        v[129] = '\0';
        assert_false(semver_valid(v));

        /* A too-long version loses to any valid one rather than winning. */
        memset(v, '9', sizeof(v));
        memcpy(v + 150, ".0.0", 5);
        assert_false(semver_valid(v));
        assert_true(semver_compare(v, "0.0.1") < 0);
}

static void test_semver_spec_precedence_chain(void **state) {
        static const char *const chain[] = {
                "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
        };
        (void) state;
        /* Every pair, not only neighbours: the order must be transitive. */
        for (size_t i = 0; i < ELEMENTSOF(chain); i++) {
                assert_same_precedence(chain[i], chain[i]);
                for (size_t j = i + 1; j < ELEMENTSOF(chain); j++)
                        assert_before(chain[i], chain[j]);
        }
}

static void test_semver_core_fields_compared_as_numbers(void **state) {
        (void) state;
        assert_before("1.9.0", "1.10.0");
        assert_before("1.0.9", "1.0.10");
        assert_before("9.0.0", "10.0.0");
        assert_before("1.99.99", "2.0.0");
        assert_before("1.2.3", "1.3.0");
        assert_before("0.0.0", "0.0.1");
        assert_same_precedence("1.2.3", "1.2.3");
        /* Major outranks minor outranks patch. */
        assert_before("1.999.999", "2.0.0");
        assert_before("1.1.999", "1.2.0");
}

static void test_semver_huge_numbers_compared(void **state) {
        (void) state;
        /* Past 2^64: no overflow, no wrap-around. */
        assert_before("18446744073709551615.0.0", "18446744073709551616.0.0");
        assert_before("9.0.0", "99999999999999999999999.0.0");
        assert_before("1.0.18446744073709551616", "1.0.99999999999999999999999");
        assert_before("1.0.0-99999999999999999999998", "1.0.0-99999999999999999999999");
        assert_before("1.0.0-99999999999999999999999", "1.0.0-a");
        assert_same_precedence("123456789012345678901234567890.0.0",
                               "123456789012345678901234567890.0.0");
}

static void test_semver_prerelease_rules(void **state) {
        (void) state;
        /* A pre-release ranks below its release. */
        assert_before("1.0.0-rc.1", "1.0.0");
        assert_before("1.0.0-0", "1.0.0");
        /* ...but above the previous release. */
        assert_before("0.9.9", "1.0.0-alpha");
        /* Numeric identifiers compare as numbers. */
        assert_before("1.0.0-2", "1.0.0-10");
        assert_before("1.0.0-rc.9", "1.0.0-rc.10");
        /* Numeric identifiers rank below alphanumeric ones. */
        assert_before("1.0.0-999", "1.0.0-a");
        assert_before("1.0.0-1", "1.0.0-0a");
        /* Alphanumeric identifiers compare in ASCII order. */
        assert_before("1.0.0-Beta", "1.0.0-alpha");
        assert_before("1.0.0-alpha", "1.0.0-alpha-1");
        assert_before("1.0.0-a.b", "1.0.0-a-b"); /* identifier "a" sorts before "a-b" */
        assert_before("1.0.0-ab", "1.0.0-b");
        /* More fields win when all before them are equal. */
        assert_before("1.0.0-alpha.1", "1.0.0-alpha.1.0");
}

static void test_semver_build_metadata_ignored(void **state) {
        (void) state;
        assert_same_precedence("1.0.0+build.1", "1.0.0+build.2");
        assert_same_precedence("1.0.0", "1.0.0+20130313144700");
        assert_same_precedence("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta");
        assert_same_precedence("1.0.0-rc.1+zzz", "1.0.0-rc.1+aaa");
        /* Build metadata does not make a pre-release a release, or the reverse. */
        assert_before("1.0.0-rc.1+build.999", "1.0.0+build.1");
        assert_before("1.0.0+999", "1.0.1+0");
        /* A '-' inside build metadata is not a pre-release marker. */
        assert_same_precedence("1.0.0+build-1", "1.0.0");
}

static void test_semver_invalid_sorts_below_valid(void **state) {
        (void) state;
        assert_true(semver_compare("garbage", "0.0.0") < 0);
        assert_true(semver_compare("0.0.0-0", "v9.9.9") > 0);
        assert_true(semver_compare(NULL, "1.0.0") < 0);
        assert_true(semver_compare("1.0.0", NULL) > 0);
        assert_int_equal(semver_compare("1.0", "v1.0.0"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_semver_valid_versions_accepted),
                cmocka_unit_test(test_semver_invalid_versions_refused),
                cmocka_unit_test(test_semver_length_limit_128_bytes),
                cmocka_unit_test(test_semver_spec_precedence_chain),
                cmocka_unit_test(test_semver_core_fields_compared_as_numbers),
                cmocka_unit_test(test_semver_huge_numbers_compared),
                cmocka_unit_test(test_semver_prerelease_rules),
                cmocka_unit_test(test_semver_build_metadata_ignored),
                cmocka_unit_test(test_semver_invalid_sorts_below_valid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
