/* test-manifest.c: the coordinator's manifest of SPEC section 5: parsing
 * and rejecting its fields, the signature URL, the rollout bucket and the
 * decision an agent takes on a verified manifest. */
#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "cleanup.h"
#include "config.h"
#include "manifest.h"
#include "reason.h"
#include "store.h"

#define MANIFEST_URL "https://coord.example/api/v1/workers/w1/manifest"
#define SHA_UPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define SHA_LOWER "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/* 2030-06-01T12:00:00Z */
#define EXPIRES_UTC ((time_t) 1906545600)

/* A manifest with every field set and valid. */
static json_t *good_manifest(void) {
        json_t *o = json_pack(
                "{s:s, s:s, s:s, s:I, s:s, s:s, s:{s:i, s:s}, s:b}", "name", "translator-worker",
                "version", "1.4.0-rc.1+build.7", "url", "packages/translator-worker-1.4.0.slotpkg",
                "size", (json_int_t) 123456789, "sha256", SHA_UPPER, "expires",
                "2030-06-01T12:00:00Z", "rollout", "percent", 25, "salt", "spring", "downgrade", 1);
        assert_non_null(o);
        return o;
}

static int parse_obj(json_t *o, Manifest **ret, Reason *reason) {
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
        assert_non_null(text);
        return manifest_parse(text, strlen(text), MANIFEST_URL, ret, reason);
}

static void assert_rejected_text(const char *text, const char *needle) {
        Reason reason = REASON_NULL;
        Manifest *m = NULL;
        int r = manifest_parse(text, strlen(text), MANIFEST_URL, &m, &reason);
        if (r != -EBADMSG)
                fail_msg("%s: expected -EBADMSG, got %d", text, r);
        assert_null(m);
        assert_true(reason.rejected);
        if (!strstr(reason.text, needle))
                fail_msg("%s: reason \"%s\" does not name \"%s\"", text, reason.text, needle);
}

/* The good manifest with key set to value (NULL: removed) must be rejected
 * with a reason naming needle. Takes value. */
static void assert_field_rejected(const char *key, json_t *value, const char *needle) {
        _cleanup_(json_decrefp) json_t *o = good_manifest();
        if (value)
                assert_int_equal(json_object_set_new(o, key, value), 0);
        else
                assert_int_equal(json_object_del(o, key), 0);
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
        assert_non_null(text);
        assert_rejected_text(text, needle);
}

static time_t parse_expires(const char *expires) {
        _cleanup_(json_decrefp) json_t *o = good_manifest();
        _cleanup_(manifest_freep) Manifest *m = NULL;
        Reason reason = REASON_NULL;
        assert_int_equal(json_object_set_new(o, "expires", json_string(expires)), 0);
        if (parse_obj(o, &m, &reason) != 0)
                fail_msg("expires %s refused: %s", expires, reason.text);
        return m->expires;
}

static void test_manifest_parse_good(void **state) {
        (void) state;
        _cleanup_(json_decrefp) json_t *o = good_manifest();
        _cleanup_(manifest_freep) Manifest *m = NULL;
        Reason reason = REASON_NULL;

        assert_int_equal(parse_obj(o, &m, &reason), 0);
        assert_non_null(m);
        assert_false(reason.rejected);
        assert_string_equal(m->name, "translator-worker");
        assert_string_equal(m->version, "1.4.0-rc.1+build.7");
        /* Relative to the folder of the manifest URL. */
        assert_string_equal(
                m->url,
                "https://coord.example/api/v1/workers/w1/packages/translator-worker-1.4.0.slotpkg");
        assert_int_equal(m->size, 123456789);
        assert_string_equal(m->sha256_hex, SHA_LOWER);
        assert_int_equal(m->sha256[0], 0x01);
        assert_int_equal(m->sha256[7], 0xef);
        assert_int_equal(m->sha256[31], 0xef);
        assert_int_equal(m->expires, EXPIRES_UTC);
        assert_true(m->has_rollout);
        assert_int_equal(m->percent, 25);
        assert_string_equal(m->salt, "spring");
        assert_true(m->downgrade);
}

static void test_manifest_parse_minimal(void **state) {
        (void) state;
        const char *text = "{\"name\":\"translator-worker\",\"version\":\"2.0.0\","
                           "\"url\":\"/pkgs/tw-2.0.0.slotpkg\",\"size\":1,"
                           "\"sha256\":\"" SHA_LOWER "\"}";
        _cleanup_(manifest_freep) Manifest *m = NULL;
        Reason reason = REASON_NULL;

        assert_int_equal(manifest_parse(text, strlen(text), MANIFEST_URL, &m, &reason), 0);
        /* An absolute path keeps the manifest's host. */
        assert_string_equal(m->url, "https://coord.example/pkgs/tw-2.0.0.slotpkg");
        assert_int_equal(m->expires, 0);
        assert_false(m->has_rollout);
        assert_false(m->downgrade);
        /* Without a rollout every worker takes part. */
        assert_true(manifest_in_rollout(m, "anyone"));
}

static void test_manifest_parse_absolute_url_kept(void **state) {
        (void) state;
        _cleanup_(json_decrefp) json_t *o = good_manifest();
        _cleanup_(manifest_freep) Manifest *m = NULL;
        Reason reason = REASON_NULL;

        assert_int_equal(json_object_set_new(o, "url",
                                             json_string("https://cdn.example/p/tw-1.4.0.slotpkg")),
                         0);
        assert_int_equal(parse_obj(o, &m, &reason), 0);
        assert_string_equal(m->url, "https://cdn.example/p/tw-1.4.0.slotpkg");
}

static void test_manifest_rejects_not_json(void **state) {
        (void) state;
        assert_rejected_text("this is not json", "JSON");
        assert_rejected_text("{\"name\":", "JSON");
        assert_rejected_text("", "JSON");
}

static void test_manifest_rejects_json_array(void **state) {
        (void) state;
        assert_rejected_text("[{\"name\":\"translator-worker\"}]", "JSON object");
        assert_rejected_text("\"translator-worker\"", "JSON object");
}

static void test_manifest_rejects_missing_fields(void **state) {
        (void) state;
        assert_field_rejected("name", NULL, "\"name\"");
        assert_field_rejected("version", NULL, "\"version\"");
        assert_field_rejected("url", NULL, "\"url\"");
        assert_field_rejected("size", NULL, "\"size\"");
        assert_field_rejected("sha256", NULL, "\"sha256\"");
}

static void test_manifest_rejects_wrong_types(void **state) {
        (void) state;
        assert_field_rejected("name", json_integer(1), "\"name\"");
        assert_field_rejected("version", json_integer(1), "\"version\"");
        assert_field_rejected("url", json_string(""), "\"url\"");
        assert_field_rejected("sha256", json_integer(0), "\"sha256\"");
}

static void test_manifest_rejects_invalid_semver(void **state) {
        (void) state;
        assert_field_rejected("version", json_string("1.2"), "\"version\"");
        assert_field_rejected("version", json_string("v1.2.3"), "\"version\"");
        assert_field_rejected("version", json_string("01.2.3"), "\"version\"");
        assert_field_rejected("version", json_string("1.2.3-"), "\"version\"");
}

static void test_manifest_rejects_bad_size(void **state) {
        (void) state;
        assert_field_rejected("size", json_integer(0), "\"size\"");
        assert_field_rejected("size", json_integer(-1), "\"size\"");
        assert_field_rejected("size", json_string("1024"), "\"size\"");
        assert_field_rejected("size", json_real(1.5), "\"size\"");
}

static void test_manifest_rejects_bad_sha256(void **state) {
        (void) state;
        /* 63 and 65 digits. */
        assert_field_rejected("sha256", json_string(SHA_LOWER + 1), "\"sha256\"");
        assert_field_rejected("sha256", json_string(SHA_LOWER "0"), "\"sha256\"");
        /* 64 characters, one of them not hex. */
        char bad[65];
        memcpy(bad, SHA_LOWER, sizeof(bad));
        bad[40] = 'g';
        assert_field_rejected("sha256", json_string(bad), "\"sha256\"");
        memcpy(bad, SHA_LOWER, sizeof(bad));
        bad[63] = ' ';
        assert_field_rejected("sha256", json_string(bad), "\"sha256\"");
}

static void test_manifest_rejects_bad_expires(void **state) {
        (void) state;
        assert_field_rejected("expires", json_string("tomorrow"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01"), "\"expires\"");
        /* No zone: a local time is ambiguous. */
        assert_field_rejected("expires", json_string("2030-06-01T12:00:00"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01 12:00:00Z"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01T12:00:00Zjunk"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01T14:00:00+0200"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01T14:00:00+02:00x"), "\"expires\"");
        /* Offsets must be exactly +HH:MM, and a real one. */
        assert_field_rejected("expires", json_string("2030-06-01T14:00:00+2:00"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01T14:00:00+02:0"), "\"expires\"");
        assert_field_rejected("expires", json_string("2030-06-01T14:00:00+99:99"), "\"expires\"");
        assert_field_rejected("expires", json_integer(1906545600), "\"expires\"");
}

static void test_manifest_rejects_bad_rollout(void **state) {
        (void) state;
        assert_field_rejected("rollout", json_pack("{s:i, s:s}", "percent", 101, "salt", "s"),
                              "\"rollout.percent\"");
        assert_field_rejected("rollout", json_pack("{s:i, s:s}", "percent", -1, "salt", "s"),
                              "\"rollout.percent\"");
        assert_field_rejected("rollout", json_pack("{s:s, s:s}", "percent", "50", "salt", "s"),
                              "\"rollout.percent\"");
        assert_field_rejected("rollout", json_integer(50), "\"rollout.percent\"");
}

static void test_manifest_rejects_downgrade_string(void **state) {
        (void) state;
        assert_field_rejected("downgrade", json_string("yes"), "\"downgrade\"");
        assert_field_rejected("downgrade", json_integer(1), "\"downgrade\"");
}

static void test_manifest_rejects_duplicate_keys(void **state) {
        (void) state;
        /* A second "version" could smuggle a value past a reader that keeps
         * the first one. */
        assert_rejected_text("{\"name\":\"translator-worker\",\"version\":\"1.0.0\","
                             "\"version\":\"9.0.0\",\"url\":\"https://cdn.example/p\","
                             "\"size\":1,\"sha256\":\"" SHA_LOWER "\"}",
                             "duplicate");
}

static void test_manifest_rejects_non_http_url(void **state) {
        (void) state;
        assert_field_rejected("url", json_string("file:///etc/shadow"), "\"url\"");
}

static void test_manifest_expires_utc(void **state) {
        (void) state;
        assert_int_equal(parse_expires("2030-06-01T12:00:00Z"), EXPIRES_UTC);
        assert_int_equal(parse_expires("2030-06-01T12:00:01Z"), EXPIRES_UTC + 1);
}

static void test_manifest_expires_offset(void **state) {
        (void) state;
        /* The same instant written in two other zones. */
        assert_int_equal(parse_expires("2030-06-01T14:00:00+02:00"), EXPIRES_UTC);
        assert_int_equal(parse_expires("2030-06-01T06:30:00-05:30"), EXPIRES_UTC);
        /* Across a date boundary. */
        assert_int_equal(parse_expires("2030-06-02T01:00:00+13:00"), EXPIRES_UTC);
}

static void test_manifest_expires_fractional_seconds(void **state) {
        (void) state;
        assert_int_equal(parse_expires("2030-06-01T12:00:00.5Z"), EXPIRES_UTC);
        assert_int_equal(parse_expires("2030-06-01T12:00:00.123456789Z"), EXPIRES_UTC);
        assert_int_equal(parse_expires("2030-06-01T14:00:00.250+02:00"), EXPIRES_UTC);
}

static void test_manifest_signature_url_keeps_query(void **state) {
        (void) state;
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(
                manifest_signature_url("https://h/a/manifest?worker=w1&channel=stable", &a), 0);
        assert_string_equal(a, "https://h/a/manifest.minisig?worker=w1&channel=stable");

        assert_int_equal(manifest_signature_url("https://h/a/manifest.json", &b), 0);
        assert_string_equal(b, "https://h/a/manifest.json.minisig");
}

/* What the rollout rule says, computed apart: sha256(salt + worker) as a
 * big-endian 256-bit number, mod 100. */
static unsigned rollout_bucket(const char *salt, const char *worker_id) {
        _cleanup_free_ char *input = NULL;
        uint8_t digest[SHA256_DIGEST_LENGTH];
        assert_true(asprintf(&input, "%s%s", salt, worker_id) > 0);
        assert_non_null(SHA256((const unsigned char *) input, strlen(input), digest));
        BIGNUM *bn = BN_bin2bn(digest, sizeof(digest), NULL);
        assert_non_null(bn);
        BN_ULONG rem = BN_mod_word(bn, 100);
        BN_free(bn);
        assert_true(rem < 100);
        return (unsigned) rem;
}

static void test_manifest_in_rollout_bounds(void **state) {
        (void) state;
        char salt[] = "s1";
        Manifest m = {.has_rollout = true, .salt = salt};
        const char *workers[] = {"w1", "w2", "gpu-07", "edge-berlin-3", ""};

        for (size_t i = 0; i < ELEMENTSOF(workers); i++) {
                m.percent = 0;
                assert_false(manifest_in_rollout(&m, workers[i]));
                m.percent = 100;
                assert_true(manifest_in_rollout(&m, workers[i]));
        }
}

static void test_manifest_in_rollout_hash_bucket(void **state) {
        (void) state;
        char salt_a[] = "2024-spring", salt_b[] = "canary";
        char *salts[] = {salt_a, salt_b};
        const char *workers[] = {"w1",       "w2",       "w3",       "w4",       "w5",
                                 "w6",       "w7",       "w8",       "w9",       "w10",
                                 "worker-a", "worker-b", "worker-c", "worker-d", "worker-e"};

        for (size_t s = 0; s < ELEMENTSOF(salts); s++) {
                Manifest m = {.has_rollout = true, .percent = 50, .salt = salts[s]};
                unsigned in = 0, out = 0;
                for (size_t i = 0; i < ELEMENTSOF(workers); i++) {
                        unsigned bucket = rollout_bucket(salts[s], workers[i]);
                        bool want = bucket < 50;
                        if (manifest_in_rollout(&m, workers[i]) != want)
                                fail_msg("salt %s worker %s: bucket %u, in_rollout should be %d",
                                         salts[s], workers[i], bucket, want);
                        /* The bucket is also the edge: bucket+1 takes it in. */
                        m.percent = (int) bucket;
                        assert_false(manifest_in_rollout(&m, workers[i]));
                        m.percent = (int) bucket + 1;
                        assert_true(manifest_in_rollout(&m, workers[i]));
                        m.percent = 50;
                        if (want)
                                in++;
                        else
                                out++;
                }
                /* Otherwise the check above could not tell the sides apart. */
                assert_true(in > 0);
                assert_true(out > 0);
        }
}

/* The config and store an agent would decide with: slot a runs 1.2.0. */
static char compatible[] = "translator-worker";
static char worker[] = "w1";

static Config decide_config(void) {
        Config c = {
                .worker_id = worker,
                .compatible = compatible,
                .max_package_size = 1000,
                .allow_downgrade = false,
        };
        return c;
}

static StoreState decide_state(void) {
        StoreState st = {.trial_slot = -1, .previous_slot = -1};
        st.slots[0].state = SLOT_GOOD;
        (void) snprintf(st.slots[0].version, sizeof(st.slots[0].version), "1.2.0");
        st.slots[1].state = SLOT_EMPTY;
        return st;
}

static Manifest decide_manifest(const char *version) {
        Manifest m = {.size = 1000, .expires = EXPIRES_UTC};
        (void) snprintf(m.name, sizeof(m.name), "translator-worker");
        (void) snprintf(m.version, sizeof(m.version), "%s", version);
        return m;
}

#define NOW (EXPIRES_UTC - 3600)

static void test_manifest_decide_install(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        Reason reason = REASON_NULL;

        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_INSTALL);
        assert_false(reason.rejected);
        /* Nothing installed yet: anything valid is an install. */
        st.slots[0].state = SLOT_EMPTY;
        st.slots[0].version[0] = '\0';
        assert_int_equal(manifest_decide(&m, &c, &st, -1, NOW, &reason), OFFER_INSTALL);
        /* No expiry at all. */
        m.expires = 0;
        assert_int_equal(manifest_decide(&m, &c, &st, -1, NOW, &reason), OFFER_INSTALL);
}

static void test_manifest_decide_rejects_other_name(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        Reason reason = REASON_NULL;

        (void) snprintf(m.name, sizeof(m.name), "other-worker");
        assert_true(manifest_decide(&m, &c, &st, 0, NOW, &reason) < 0);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "other-worker"));
}

static void test_manifest_decide_rejects_expired(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        Reason reason = REASON_NULL;

        assert_int_equal(manifest_decide(&m, &c, &st, 0, EXPIRES_UTC + 1, &reason), -EKEYEXPIRED);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "expired"));
        /* At the expiry instant itself it no longer counts. */
        reason = (Reason) REASON_NULL;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, EXPIRES_UTC, &reason), -EKEYEXPIRED);
        assert_true(reason.rejected);
}

static void test_manifest_decide_rejects_too_big(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        Reason reason = REASON_NULL;

        m.size = c.max_package_size + 1;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), -EFBIG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "max_package_size"));
        /* Exactly the limit is fine. */
        m.size = c.max_package_size;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, NULL), OFFER_INSTALL);
}

static void test_manifest_decide_up_to_date(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.2.0");
        Reason reason = REASON_NULL;

        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_UP_TO_DATE);
        assert_false(reason.rejected);
        /* Build metadata does not make another version. */
        m = decide_manifest("1.2.0+build.9");
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_UP_TO_DATE);
        /* The active slot is the one that counts. */
        st.slots[1] = st.slots[0];
        (void) snprintf(st.slots[0].version, sizeof(st.slots[0].version), "1.0.0");
        assert_int_equal(manifest_decide(&m, &c, &st, 1, NOW, &reason), OFFER_UP_TO_DATE);
}

static void test_manifest_decide_downgrade(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.1.9");
        Reason reason = REASON_NULL;

        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), -EPERM);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "downgrade"));
        /* A pre-release of the running version is lower too. */
        m = decide_manifest("1.2.0-rc.1");
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, NULL), -EPERM);

        /* Allowed by the manifest. */
        m = decide_manifest("1.1.9");
        m.downgrade = true;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, NULL), OFFER_INSTALL);
        /* Allowed by the config. */
        m.downgrade = false;
        c.allow_downgrade = true;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, NULL), OFFER_INSTALL);
}

static void test_manifest_decide_not_in_rollout(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        char salt[] = "s";
        Reason reason = REASON_NULL;

        m.has_rollout = true;
        m.salt = salt;
        m.percent = 0;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_NOT_IN_ROLLOUT);
        assert_false(reason.rejected);
        m.percent = 100;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_INSTALL);
        /* The worker's own bucket decides. */
        m.percent = (int) rollout_bucket(salt, worker);
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_NOT_IN_ROLLOUT);
        m.percent++;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_INSTALL);
}

static void test_manifest_decide_known_bad(void **state) {
        (void) state;
        Config c = decide_config();
        StoreState st = decide_state();
        Manifest m = decide_manifest("1.3.0");
        Reason reason = REASON_NULL;

        st.slots[1].state = SLOT_BAD;
        (void) snprintf(st.slots[1].version, sizeof(st.slots[1].version), "1.3.0");
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_KNOWN_BAD);
        assert_false(reason.rejected);

        /* A bad slot holding another version does not block this one. */
        m = decide_manifest("1.3.1");
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_INSTALL);
        /* Nor does a good one holding the same version. */
        m = decide_manifest("1.3.0");
        st.slots[1].state = SLOT_INSTALLED;
        assert_int_equal(manifest_decide(&m, &c, &st, 0, NOW, &reason), OFFER_INSTALL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest_parse_good),
                cmocka_unit_test(test_manifest_parse_minimal),
                cmocka_unit_test(test_manifest_parse_absolute_url_kept),
                cmocka_unit_test(test_manifest_rejects_not_json),
                cmocka_unit_test(test_manifest_rejects_json_array),
                cmocka_unit_test(test_manifest_rejects_missing_fields),
                cmocka_unit_test(test_manifest_rejects_wrong_types),
                cmocka_unit_test(test_manifest_rejects_invalid_semver),
                cmocka_unit_test(test_manifest_rejects_bad_size),
                cmocka_unit_test(test_manifest_rejects_bad_sha256),
                cmocka_unit_test(test_manifest_rejects_bad_expires),
                cmocka_unit_test(test_manifest_rejects_bad_rollout),
                cmocka_unit_test(test_manifest_rejects_downgrade_string),
                cmocka_unit_test(test_manifest_rejects_duplicate_keys),
                cmocka_unit_test(test_manifest_rejects_non_http_url),
                cmocka_unit_test(test_manifest_expires_utc),
                cmocka_unit_test(test_manifest_expires_offset),
                cmocka_unit_test(test_manifest_expires_fractional_seconds),
                cmocka_unit_test(test_manifest_signature_url_keeps_query),
                cmocka_unit_test(test_manifest_in_rollout_bounds),
                cmocka_unit_test(test_manifest_in_rollout_hash_bucket),
                cmocka_unit_test(test_manifest_decide_install),
                cmocka_unit_test(test_manifest_decide_rejects_other_name),
                cmocka_unit_test(test_manifest_decide_rejects_expired),
                cmocka_unit_test(test_manifest_decide_rejects_too_big),
                cmocka_unit_test(test_manifest_decide_up_to_date),
                cmocka_unit_test(test_manifest_decide_downgrade),
                cmocka_unit_test(test_manifest_decide_not_in_rollout),
                cmocka_unit_test(test_manifest_decide_known_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
