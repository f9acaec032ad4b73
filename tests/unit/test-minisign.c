/* test-minisign.c: minisign key and signature handling, checked against
 * keys and signatures made by the stock minisign tool in a temporary folder. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
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


#define PAYLOAD_SIZE 200000
#define TRUSTED_COMMENT "release 1.2.3 for translator-worker"
#define MANIFEST "{\"name\":\"translator-worker\",\"version\":\"1.1.0\"}\n"

static char tmpdir[] = "/tmp/test-minisign-XXXXXX";

/* A few rotating buffers so one call can take several paths. */
static const char *at(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned next;
        return join(bufs[next++ % ELEMENTSOF(bufs)], PATH_MAX, tmpdir, name);
}

static int gen_key(const char *pub, const char *sec) {
        const char *argv[] = {"minisign", "-G", "-W", "-p", pub, "-s", sec, NULL};
        return run(argv);
}

static int sign(const char *sec, const char *file, const char *sig, int legacy) {
        const char *argv[] = {
                "minisign",           "-S", "-s", sec, "-m", file, "-x", sig, "-t", TRUSTED_COMMENT,
                legacy ? "-l" : NULL, NULL};
        return run(argv);
}

static int group_setup(void **state) {
        static uint8_t payload[PAYLOAD_SIZE];
        uint32_t x = 0x12345678;

        (void) state;
        if (!mkdtemp(tmpdir))
                return -1;
        if (mkdir(at("ring"), 0755) < 0 || mkdir(at("emptyring"), 0755) < 0 ||
            mkdir(at("nokeys"), 0755) < 0)
                return -1;

        if (gen_key(at("ring/a.pub"), at("a.sec")) != 0 ||
            gen_key(at("ring/b.pub"), at("b.sec")) != 0 || gen_key(at("c.pub"), at("c.sec")) != 0)
                return -1;
        /* Neither is a key file of the folder: no .pub suffix, or hidden. */
        if (write_file(at("ring/README"), "keys\n", 5) < 0 ||
            write_file(at("ring/.old.pub"), "garbage\n", 8) < 0 ||
            write_file(at("nokeys/README"), "keys\n", 5) < 0)
                return -1;

        /* Larger than a few 64 KiB hashing chunks, and not a multiple. */
        for (size_t i = 0; i < sizeof(payload); i++) {
                x = x * 1103515245u + 12345u;
                payload[i] = (uint8_t) (x >> 16);
        }
        if (write_file(at("payload"), payload, sizeof(payload)) < 0 ||
            write_file(at("empty"), "", 0) < 0 ||
            write_file(at("manifest.json"), MANIFEST, strlen(MANIFEST)) < 0)
                return -1;

        if (sign(at("a.sec"), at("payload"), at("payload.minisig"), 0) != 0 ||
            sign(at("a.sec"), at("payload"), at("payload.legacy.minisig"), 1) != 0 ||
            sign(at("b.sec"), at("payload"), at("payload.b.minisig"), 0) != 0 ||
            sign(at("c.sec"), at("payload"), at("payload.c.minisig"), 0) != 0 ||
            sign(at("a.sec"), at("empty"), at("empty.minisig"), 0) != 0 ||
            sign(at("a.sec"), at("empty"), at("empty.legacy.minisig"), 1) != 0 ||
            sign(at("a.sec"), at("manifest.json"), at("manifest.minisig"), 0) != 0 ||
            sign(at("a.sec"), at("manifest.json"), at("manifest.legacy.minisig"), 1) != 0)
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
        assert_non_null(kr);
        return kr;
}

static MinisignSig *sig_file(const char *path) {
        MinisignSig *s = NULL;
        Reason reason = REASON_NULL;
        assert_int_equal(minisign_sig_load(path, &s, &reason), 0);
        assert_non_null(s);
        return s;
}

/* Verifies the file at path; ret_key must come back untouched on failure. */
static int verify_path(const MinisignKeyring *kr, const char *sig_path, const char *path,
                       uint64_t max_size, const MinisignKey **ret_key, Reason *reason) {
        static const MinisignKey sentinel;
        _cleanup_(minisign_sig_freep) MinisignSig *sig = sig_file(sig_path);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        const MinisignKey *key = &sentinel;
        int r;

        assert_true(fd >= 0);
        r = minisign_verify_fd(kr, sig, fd, max_size, &key, reason);
        if (r < 0)
                assert_ptr_equal(key, &sentinel);
        else
                assert_ptr_not_equal(key, &sentinel);
        if (ret_key)
                *ret_key = key;
        return r;
}

/* The four lines of a .minisig file, without their newlines. */
typedef struct SigLines {
        char line[4][256];
} SigLines;

static void sig_lines(const char *path, SigLines *ret) {
        size_t len;
        _cleanup_free_ char *text = read_file(path, &len);
        char *p = text;
        for (size_t i = 0; i < 4; i++) {
                char *nl = strchr(p, '\n');
                assert_non_null(nl);
                *nl = '\0';
                assert_true(strlen(p) < sizeof(ret->line[i]));
                strcpy(ret->line[i], p);
                p = nl + 1;
        }
        assert_string_equal(p, "");
}

static int parse_lines(const char *l1, const char *l2, const char *l3, const char *l4,
                       Reason *reason) {
        char text[1100];
        MinisignSig *s = NULL;
        int r;

        if (l4)
                (void) snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n", l1, l2, l3, l4);
        else
                (void) snprintf(text, sizeof(text), "%s\n%s\n%s\n", l1, l2, l3);
        r = minisign_sig_parse(text, strlen(text), &s, reason);
        if (r < 0)
                assert_null(s);
        s = minisign_sig_free(s);
        return r;
}

static void test_minisign_prehashed_verifies(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        _cleanup_(minisign_sig_freep) MinisignSig *sig = sig_file(at("payload.minisig"));
        _cleanup_close_ int fd = open(at("payload"), O_RDONLY | O_CLOEXEC);
        Reason reason = REASON_NULL;
        const MinisignKey *key = NULL;

        (void) state;
        assert_int_equal(kr->n_keys, 1);
        assert_int_equal(sig->prehashed, 1);
        assert_string_equal(sig->trusted_comment, TRUSTED_COMMENT);
        assert_memory_equal(sig->key_id, kr->keys[0].key_id, 8);

        /* The content is read from its start wherever the offset is. */
        assert_true(fd >= 0);
        assert_int_equal(lseek(fd, 12345, SEEK_SET), 12345);
        assert_int_equal(minisign_verify_fd(kr, sig, fd, UINT64_MAX, &key, &reason), 0);
        assert_ptr_equal(key, &kr->keys[0]);
        assert_string_equal(key->path, at("ring/a.pub"));
}

static void test_minisign_legacy_verifies(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        _cleanup_(minisign_sig_freep) MinisignSig *sig = sig_file(at("payload.legacy.minisig"));
        Reason reason = REASON_NULL;
        const MinisignKey *key = NULL;

        (void) state;
        assert_int_equal(sig->prehashed, 0);
        assert_int_equal(verify_path(kr, at("payload.legacy.minisig"), at("payload"), UINT64_MAX,
                                     &key, &reason),
                         0);
        assert_ptr_equal(key, &kr->keys[0]);
}

static void test_minisign_empty_file_verifies(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        Reason reason = REASON_NULL;

        (void) state;
        assert_int_equal(verify_path(kr, at("empty.minisig"), at("empty"), 0, NULL, &reason), 0);
        assert_int_equal(verify_path(kr, at("empty.legacy.minisig"), at("empty"), 0, NULL, &reason),
                         0);
        /* An empty file is not the signed payload. */
        assert_int_equal(verify_path(kr, at("payload.minisig"), at("empty"), 0, NULL, &reason),
                         -EBADMSG);
}

static void test_minisign_changed_byte_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        Reason reason = REASON_NULL;
        size_t len;
        _cleanup_free_ char *data = read_file(at("payload"), &len);

        (void) state;
        /* One byte in the third 64 KiB chunk. */
        data[150000] ^= 0x01;
        assert_int_equal(write_file(at("payload.changed"), data, len), 0);

        assert_int_equal(verify_path(kr, at("payload.minisig"), at("payload.changed"), UINT64_MAX,
                                     NULL, &reason),
                         -EBADMSG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "signature does not match the content"));

        reason = (Reason) REASON_NULL;
        assert_int_equal(verify_path(kr, at("payload.legacy.minisig"), at("payload.changed"),
                                     UINT64_MAX, NULL, &reason),
                         -EBADMSG);
        assert_true(reason.rejected);

        /* One byte more at the end. */
        data[150000] ^= 0x01;
        char *longer = realloc(data, len + 1);
        assert_non_null(longer);
        data = longer;
        data[len] = 'x';
        assert_int_equal(write_file(at("payload.longer"), data, len + 1), 0);
        assert_int_equal(verify_path(kr, at("payload.minisig"), at("payload.longer"), UINT64_MAX,
                                     NULL, &reason),
                         -EBADMSG);
}

static void test_minisign_untrusted_key_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        _cleanup_(minisign_keyring_freep) MinisignKeyring *ring = keyring(at("ring"));
        Reason reason = REASON_NULL;
        size_t len;
        _cleanup_free_ char *pub = read_file(at("c.pub"), &len);
        const char *prefix = "untrusted comment: minisign public key ";
        char id[32], *end = NULL;

        (void) state;
        /* The reason shows the key id minisign prints in the .pub comment,
         * a little-endian integer; minisign 0.11 does not zero-pad it. */
        assert_true(strncmp(pub, prefix, strlen(prefix)) == 0);
        unsigned long long n = strtoull(pub + strlen(prefix), &end, 16);
        assert_true(end && *end == '\n');
        (void) snprintf(id, sizeof(id), "key id %016llX", n);

        assert_int_equal(
                verify_path(kr, at("payload.c.minisig"), at("payload"), UINT64_MAX, NULL, &reason),
                -ENOKEY);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "signed by an untrusted key"));
        assert_non_null(strstr(reason.text, id));

        assert_int_equal(verify_path(ring, at("payload.c.minisig"), at("payload"), UINT64_MAX, NULL,
                                     &reason),
                         -ENOKEY);
        /* A key that did not sign is no help either, whatever the limit. */
        assert_int_equal(verify_path(kr, at("payload.b.minisig"), at("payload"), 0, NULL, &reason),
                         -ENOKEY);
}

static void test_minisign_trusted_comment_tampered_rejected(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        Reason reason = REASON_NULL;
        SigLines l = {0};
        char text[1100];

        (void) state;
        sig_lines(at("payload.minisig"), &l);
        (void) snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n", l.line[0], l.line[1],
                        "trusted comment: release 9.9.9 for translator-worker", l.line[3]);
        assert_int_equal(write_file(at("tampered.minisig"), text, strlen(text)), 0);

        assert_int_equal(
                verify_path(kr, at("tampered.minisig"), at("payload"), UINT64_MAX, NULL, &reason),
                -EKEYREJECTED);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "trusted comment does not match its signature"));

        /* The global signature itself altered. */
        l.line[3][0] = l.line[3][0] == 'A' ? 'B' : 'A';
        (void) snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n", l.line[0], l.line[1], l.line[2],
                        l.line[3]);
        assert_int_equal(write_file(at("tampered-global.minisig"), text, strlen(text)), 0);
        assert_int_equal(verify_path(kr, at("tampered-global.minisig"), at("payload"), UINT64_MAX,
                                     NULL, &reason),
                         -EKEYREJECTED);
}

static void test_minisign_malformed_sig_rejected(void **state) {
        Reason reason = REASON_NULL;
        SigLines l = {0};
        char b64[256], big[5000];
        uint8_t raw[80];
        MinisignSig *s = NULL;

        (void) state;
        sig_lines(at("payload.minisig"), &l);
        assert_int_equal(parse_lines(l.line[0], l.line[1], l.line[2], l.line[3], &reason), 0);

        assert_int_equal(parse_lines(l.line[0], l.line[1], l.line[2], NULL, &reason), -EBADMSG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "expected 4 lines, found 3"));

        /* Truncated base64 of the signature. */
        strcpy(b64, l.line[1]);
        b64[strlen(b64) - 4] = '\0';
        reason = (Reason) REASON_NULL;
        assert_int_equal(parse_lines(l.line[0], b64, l.line[2], l.line[3], &reason), -EBADMSG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, "line 2"));

        /* A character outside the alphabet, and one that EVP_Decode*()
         * would take as the end of the input. */
        strcpy(b64, l.line[1]);
        b64[10] = '*';
        assert_int_equal(parse_lines(l.line[0], b64, l.line[2], l.line[3], &reason), -EBADMSG);
        b64[10] = '-';
        assert_int_equal(parse_lines(l.line[0], b64, l.line[2], l.line[3], &reason), -EBADMSG);

        /* Truncated global signature. */
        strcpy(b64, l.line[3]);
        b64[strlen(b64) - 4] = '\0';
        assert_int_equal(parse_lines(l.line[0], l.line[1], l.line[2], b64, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "line 4"));

        /* Wrong algorithm bytes, otherwise well formed. */
        assert_int_equal(
                EVP_DecodeBlock(raw, (const unsigned char *) l.line[1], (int) strlen(l.line[1])),
                75); /* 74 bytes and the padding EVP_DecodeBlock() counts */
        assert_memory_equal(raw, "ED", 2);
        raw[1] = 'X';
        assert_int_equal(EVP_EncodeBlock((unsigned char *) b64, raw, 74), 100);
        assert_int_equal(parse_lines(l.line[0], b64, l.line[2], l.line[3], &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "unknown signature algorithm"));

        /* Prefixes. */
        assert_int_equal(parse_lines("comment: x", l.line[1], l.line[2], l.line[3], &reason),
                         -EBADMSG);
        assert_int_equal(parse_lines(l.line[0], l.line[1], "comment: x", l.line[3], &reason),
                         -EBADMSG);

        /* Nothing, five lines, an embedded NUL. */
        assert_int_equal(minisign_sig_parse("", 0, &s, &reason), -EBADMSG);
        assert_int_equal(parse_lines(l.line[0], l.line[1], l.line[2], l.line[3], &reason), 0);
        (void) snprintf(big, sizeof(big), "%s\n%s\n%s\n%s\nmore\n", l.line[0], l.line[1], l.line[2],
                        l.line[3]);
        assert_int_equal(minisign_sig_parse(big, strlen(big), &s, &reason), -EBADMSG);
        assert_int_equal(minisign_sig_parse("a\0b\nc\nd\ne\n", 10, &s, &reason), -EBADMSG);
        assert_null(s);

        /* From a file, the reason names it. */
        (void) snprintf(big, sizeof(big), "%s\n%s\n%s\n", l.line[0], l.line[1], l.line[2]);
        assert_int_equal(write_file(at("short.minisig"), big, strlen(big)), 0);
        reason = (Reason) REASON_NULL;
        assert_int_equal(minisign_sig_load(at("short.minisig"), &s, &reason), -EBADMSG);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, at("short.minisig")));

        /* Over 4 KiB: a trusted comment nobody would write. */
        memset(big, 'x', sizeof(big));
        int n = snprintf(big, sizeof(big), "%s\n%s\ntrusted comment: ", l.line[0], l.line[1]);
        big[n] = 'x';
        assert_int_equal(write_file(at("big.minisig"), big, sizeof(big)), 0);
        assert_int_equal(minisign_sig_load(at("big.minisig"), &s, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "4096"));
        assert_null(s);
}

static void test_minisign_malformed_pub_rejected(void **state) {
        Reason reason = REASON_NULL;
        MinisignKeyring *kr = NULL;
        size_t len;
        _cleanup_free_ char *pub = read_file(at("ring/a.pub"), &len);
        char *nl = strchr(pub, '\n');
        char text[512], b64[128];
        uint8_t raw[64];

        (void) state;
        assert_non_null(nl);

        /* The comment line alone. */
        assert_int_equal(write_file(at("bad.pub"), pub, (size_t) (nl - pub) + 1), 0);
        assert_int_equal(minisign_keyring_load(at("bad.pub"), &kr, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, at("bad.pub")));
        assert_non_null(strstr(reason.text, "expected 2 lines"));

        /* Not base64. */
        (void) snprintf(text, sizeof(text), "%.*s\nnot a key at all\n", (int) (nl - pub), pub);
        assert_int_equal(write_file(at("bad.pub"), text, strlen(text)), 0);
        assert_int_equal(minisign_keyring_load(at("bad.pub"), &kr, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "line 2"));

        /* A third line. */
        (void) snprintf(text, sizeof(text), "%sextra\n", pub);
        assert_int_equal(write_file(at("bad.pub"), text, strlen(text)), 0);
        assert_int_equal(minisign_keyring_load(at("bad.pub"), &kr, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "found 3"));

        /* Base64 of a key one byte short. */
        assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *) nl + 1, 56), 42);
        assert_int_equal(EVP_EncodeBlock((unsigned char *) b64, raw, 41), 56);
        (void) snprintf(text, sizeof(text), "%.*s\n%s\n", (int) (nl - pub), pub, b64);
        assert_int_equal(write_file(at("bad.pub"), text, strlen(text)), 0);
        assert_int_equal(minisign_keyring_load(at("bad.pub"), &kr, &reason), -EBADMSG);

        /* Unknown algorithm. */
        raw[0] = 'X';
        assert_int_equal(EVP_EncodeBlock((unsigned char *) b64, raw, 42), 56);
        (void) snprintf(text, sizeof(text), "%.*s\n%s\n", (int) (nl - pub), pub, b64);
        assert_int_equal(write_file(at("bad.pub"), text, strlen(text)), 0);
        assert_int_equal(minisign_keyring_load(at("bad.pub"), &kr, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, "unknown key algorithm"));

        /* In a folder, one bad file spoils the keyring and is named. */
        assert_int_equal(mkdir(at("badring"), 0755), 0);
        assert_int_equal(write_file(at("badring/a.pub"), pub, len), 0);
        assert_int_equal(write_file(at("badring/b.pub"), "untrusted comment: x\n", 21), 0);
        assert_int_equal(minisign_keyring_load(at("badring"), &kr, &reason), -EBADMSG);
        assert_non_null(strstr(reason.text, at("badring/b.pub")));
        assert_null(kr);
}

static void test_minisign_missing_files_not_found(void **state) {
        Reason reason = REASON_NULL;
        MinisignKeyring *kr = NULL;
        MinisignSig *s = NULL;

        (void) state;
        assert_int_equal(minisign_keyring_load(at("nothere.pub"), &kr, &reason), -ENOENT);
        assert_non_null(strstr(reason.text, at("nothere.pub")));
        assert_int_equal(minisign_keyring_load(at("emptyring"), &kr, &reason), -ENOENT);
        assert_non_null(strstr(reason.text, at("emptyring")));
        assert_int_equal(minisign_keyring_load(at("nokeys"), &kr, &reason), -ENOENT);
        assert_null(kr);

        assert_int_equal(minisign_sig_load(at("nothere.minisig"), &s, &reason), -ENOENT);
        assert_true(reason.rejected);
        assert_non_null(strstr(reason.text, at("nothere.minisig")));
        assert_null(s);
}

static void test_minisign_keyring_folder_rotation(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring"));
        Reason reason = REASON_NULL;
        const MinisignKey *key = NULL;

        (void) state;
        /* README and the hidden .old.pub are not keys of the folder. */
        assert_int_equal(kr->n_keys, 2);
        assert_string_equal(kr->keys[0].path, at("ring/a.pub"));
        assert_string_equal(kr->keys[1].path, at("ring/b.pub"));

        assert_int_equal(
                verify_path(kr, at("payload.b.minisig"), at("payload"), UINT64_MAX, &key, &reason),
                0);
        assert_ptr_equal(key, &kr->keys[1]);
        assert_int_equal(
                verify_path(kr, at("payload.minisig"), at("payload"), UINT64_MAX, &key, &reason),
                0);
        assert_ptr_equal(key, &kr->keys[0]);

        /* Order is by name, not by creation or directory order. */
        static const char *const names[] = {"many/k5.pub", "many/k1.pub", "many/k7.pub",
                                            "many/k3.pub", "many/k8.pub", "many/k2.pub",
                                            "many/k6.pub", "many/k4.pub"};
        size_t len;
        _cleanup_free_ char *pub = read_file(at("ring/b.pub"), &len);
        assert_int_equal(mkdir(at("many"), 0755), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(write_file(at(names[i]), pub, len), 0);
        _cleanup_(minisign_keyring_freep) MinisignKeyring *many = keyring(at("many"));
        assert_int_equal(many->n_keys, ELEMENTSOF(names));
        for (size_t i = 1; i < many->n_keys; i++)
                assert_true(strcmp(many->keys[i - 1].path, many->keys[i].path) < 0);
        /* Keys sharing an id: the first by name answers. */
        assert_int_equal(verify_path(many, at("payload.b.minisig"), at("payload"), UINT64_MAX, &key,
                                     &reason),
                         0);
        assert_string_equal(key->path, at("many/k1.pub"));
}

static void test_minisign_verify_buffer(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring"));
        _cleanup_(minisign_sig_freep) MinisignSig *sig = sig_file(at("manifest.minisig"));
        _cleanup_(minisign_sig_freep) MinisignSig *legacy = sig_file(at("manifest.legacy.minisig"));
        _cleanup_(minisign_sig_freep) MinisignSig *foreign = sig_file(at("payload.c.minisig"));
        Reason reason = REASON_NULL;
        const MinisignKey *key = NULL;
        char buf[] = MANIFEST;

        (void) state;
        assert_int_equal(minisign_verify_buffer(kr, sig, buf, strlen(buf), &key, &reason), 0);
        assert_ptr_equal(key, &kr->keys[0]);
        key = NULL;
        assert_int_equal(minisign_verify_buffer(kr, legacy, buf, strlen(buf), &key, &reason), 0);
        assert_ptr_equal(key, &kr->keys[0]);

        key = NULL;
        buf[10] = 'X';
        assert_int_equal(minisign_verify_buffer(kr, sig, buf, strlen(buf), &key, &reason),
                         -EBADMSG);
        assert_true(reason.rejected);
        assert_int_equal(minisign_verify_buffer(kr, legacy, buf, strlen(buf), &key, &reason),
                         -EBADMSG);
        assert_int_equal(minisign_verify_buffer(kr, foreign, buf, strlen(buf), &key, &reason),
                         -ENOKEY);
        assert_null(key);
}

static void test_minisign_max_size_exceeded(void **state) {
        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("ring/a.pub"));
        Reason reason = REASON_NULL;

        (void) state;
        assert_int_equal(verify_path(kr, at("payload.minisig"), at("payload"), PAYLOAD_SIZE - 1,
                                     NULL, &reason),
                         -EFBIG);
        assert_true(reason.rejected);
        assert_int_equal(verify_path(kr, at("payload.legacy.minisig"), at("payload"),
                                     PAYLOAD_SIZE - 1, NULL, &reason),
                         -EFBIG);
        assert_int_equal(
                verify_path(kr, at("payload.minisig"), at("payload"), PAYLOAD_SIZE, NULL, &reason),
                0);
        assert_int_equal(verify_path(kr, at("payload.legacy.minisig"), at("payload"), PAYLOAD_SIZE,
                                     NULL, &reason),
                         0);
}

static void test_minisign_crlf_and_no_final_newline_accepted(void **state) {
        Reason reason = REASON_NULL;
        size_t len;
        _cleanup_free_ char *pub = read_file(at("ring/a.pub"), &len);
        char text[1100];
        SigLines l = {0};

        (void) state;
        char *nl = strchr(pub, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *key = nl + 1;
        key[strcspn(key, "\n")] = '\0';
        (void) snprintf(text, sizeof(text), "%s\r\n%s", pub, key);
        assert_int_equal(write_file(at("crlf.pub"), text, strlen(text)), 0);

        sig_lines(at("payload.minisig"), &l);
        (void) snprintf(text, sizeof(text), "%s\r\n%s\r\n%s\r\n%s\r\n", l.line[0], l.line[1],
                        l.line[2], l.line[3]);
        assert_int_equal(write_file(at("crlf.minisig"), text, strlen(text)), 0);

        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = keyring(at("crlf.pub"));
        _cleanup_(minisign_sig_freep) MinisignSig *sig = sig_file(at("crlf.minisig"));
        assert_string_equal(sig->trusted_comment, TRUSTED_COMMENT);
        assert_int_equal(
                verify_path(kr, at("crlf.minisig"), at("payload"), UINT64_MAX, NULL, &reason), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minisign_prehashed_verifies),
                cmocka_unit_test(test_minisign_legacy_verifies),
                cmocka_unit_test(test_minisign_empty_file_verifies),
                cmocka_unit_test(test_minisign_changed_byte_rejected),
                cmocka_unit_test(test_minisign_untrusted_key_rejected),
                cmocka_unit_test(test_minisign_trusted_comment_tampered_rejected),
                cmocka_unit_test(test_minisign_malformed_sig_rejected),
                cmocka_unit_test(test_minisign_malformed_pub_rejected),
                cmocka_unit_test(test_minisign_missing_files_not_found),
                cmocka_unit_test(test_minisign_keyring_folder_rotation),
                cmocka_unit_test(test_minisign_verify_buffer),
                cmocka_unit_test(test_minisign_max_size_exceeded),
                cmocka_unit_test(test_minisign_crlf_and_no_final_newline_accepted),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
