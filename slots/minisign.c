/* minisign.c: reading minisign public keys and detached signatures, and
 * verifying content against them with libcrypto.
 *
 * The order of checks follows minisign's verify(): the signature over the
 * content first, then the global signature over signature || trusted
 * comment. A keyring is looked up by key id before any content is read, so an
 * untrusted signer costs nothing however large the file is.
 *
 * Error classes: a signature that is missing, malformed or does not verify
 * is a rejection of the input; a keyring that cannot be loaded, or content
 * that cannot be read, is a failure of the operation (the operator has to
 * fix the configuration or the disk, not the package). */
#include "minisign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

#define MINISIGN_FILE_MAX 4096
#define HASH_CHUNK (64 * 1024)
#define KEY_ID_HEX_MAX 17

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "

/* Decoded sizes: the algorithm ("Ed" or "ED"), the key id, then the key or
 * the signature. */
#define PUBKEY_BYTES (2 + 8 + 32)
#define SIG_BYTES (2 + 8 + 64)
#define GLOBAL_SIG_BYTES 64

static void evp_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}
static void evp_md_ctx_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
}
static void evp_md_freep(EVP_MD **p) {
        EVP_MD_free(*p);
}
static void evp_encode_ctx_freep(EVP_ENCODE_CTX **p) {
        EVP_ENCODE_CTX_free(*p);
}

typedef struct Line {
        const char *p;
        size_t n;
} Line;

/* Splits text into at most max lines ending in "\n" or "\r\n"; the last
 * line may lack its newline. Returns the total count, which may exceed max
 * so that the caller can report it. */
static size_t split_lines(const char *text, size_t len, Line *lines, size_t max) {
        size_t count = 0, pos = 0;

        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t end = nl ? (size_t) (nl - text) : len;
                size_t n = end - pos;

                if (n > 0 && text[pos + n - 1] == '\r')
                        n--;
                if (count < max)
                        lines[count] = (Line){.p = text + pos, .n = n};
                count++;
                pos = nl ? end + 1 : len;
        }
        return count;
}

static bool line_has_prefix(const Line *l, const char *prefix) {
        size_t n = strlen(prefix);
        return l->n >= n && memcmp(l->p, prefix, n) == 0;
}

/* Decodes exactly want bytes. EVP_DecodeUpdate() skips whitespace and stops
 * at '-', so the encoded form is pinned down first: the canonical length,
 * the alphabet, and exactly the padding want implies. */
static int base64_decode_exact(const Line *l, uint8_t *out, size_t want) {
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t enc_len = 4 * ((want + 2) / 3);
        size_t pad = (3 - want % 3) % 3;
        uint8_t buf[128];
        char in[sizeof(buf) + 1];
        int n1 = 0, n2 = 0;

        if (l->n != enc_len || enc_len > sizeof(buf))
                return -EBADMSG;
        memcpy(in, l->p, l->n);
        in[l->n] = '\0';
        if (strspn(in, alphabet) != enc_len - pad || strspn(in + enc_len - pad, "=") != pad)
                return -EBADMSG;

        _cleanup_(evp_encode_ctx_freep) EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        if (!ctx)
                return -ENOMEM;
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *) in, (int) enc_len) < 0 ||
            EVP_DecodeFinal(ctx, buf + n1, &n2) != 1) {
                ERR_clear_error();
                return -EBADMSG;
        }
        if ((size_t) n1 + (size_t) n2 != want)
                return -EBADMSG;
        memcpy(out, buf, want);
        return 0;
}

/* Key ids are shown the way minisign prints them: the 8 stored bytes read
 * as a little-endian integer, in upper-case hex. */
static void key_id_to_hex(const uint8_t id[8], char buf[KEY_ID_HEX_MAX]) {
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < 8; i++) {
                buf[2 * i] = hex[id[7 - i] >> 4];
                buf[2 * i + 1] = hex[id[7 - i] & 0xf];
        }
        buf[16] = '\0';
}

static int pubkey_parse(const char *path, const char *text, size_t len, MinisignKey *ret,
                        Reason *reason) {
        uint8_t raw[PUBKEY_BYTES];
        Line lines[2];
        size_t n;

        if (memchr(text, '\0', len))
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: it contains a NUL byte", path);
        n = split_lines(text, len, lines, ELEMENTSOF(lines));
        if (n != 2)
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: expected 2 lines, found %zu",
                                   path, n);
        if (!line_has_prefix(&lines[0], UNTRUSTED_PREFIX))
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: line 1 does not start with "
                                   "\"" UNTRUSTED_PREFIX "\"",
                                   path);
        if (base64_decode_exact(&lines[1], raw, sizeof(raw)) < 0)
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: line 2 is not the base64 of "
                                   "a %d-byte key",
                                   path, PUBKEY_BYTES);
        if (memcmp(raw, "Ed", 2) != 0)
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: unknown key algorithm "
                                   "0x%02x%02x (expected \"Ed\")",
                                   path, raw[0], raw[1]);

        char *p = strdup(path);
        if (!p)
                return reason_fail(reason, -ENOMEM, "out of memory");
        memcpy(ret->key_id, raw + 2, sizeof(ret->key_id));
        memcpy(ret->pk, raw + 10, sizeof(ret->pk));
        ret->path = p;
        return 0;
}

static int keyring_add_file(MinisignKeyring *kr, const char *path, Reason *reason) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_bounded(path, MINISIGN_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return reason_fail(reason, -EBADMSG,
                                   "malformed public key file %s: larger than %d bytes", path,
                                   MINISIGN_FILE_MAX);
        if (r == -EISDIR)
                return reason_fail(reason, -EBADMSG, "malformed public key file %s: it is a folder",
                                   path);
        if (r == -ENOENT)
                return reason_fail(reason, -ENOENT, "public key file %s does not exist", path);
        if (r < 0)
                return reason_fail(reason, r, "failed to read public key file %s: %s", path,
                                   strerror(-r));

        MinisignKey *keys = realloc(kr->keys, (kr->n_keys + 1) * sizeof(*keys));
        if (!keys)
                return reason_fail(reason, -ENOMEM, "out of memory");
        kr->keys = keys;

        r = pubkey_parse(path, text, len, &kr->keys[kr->n_keys], reason);
        if (r < 0)
                return r;
        kr->n_keys++;
        return 0;
}

static int cmp_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static int keyring_add_folder(MinisignKeyring *kr, const char *path, Reason *reason) {
        char **names = NULL;
        size_t n_names = 0;
        int r = 0;

        DIR *d = opendir(path);
        if (!d) {
                r = -errno;
                return reason_fail(reason, r, "failed to open key folder %s: %s", path,
                                   strerror(-r));
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0) {
                                r = -errno;
                                (void) reason_fail(reason, r, "failed to read key folder %s: %s",
                                                   path, strerror(-r));
                        }
                        break;
                }
                size_t l = strlen(de->d_name);
                /* Hidden files are left out, as a shell glob would. */
                if (de->d_name[0] == '.' || l <= 4 || strcmp(de->d_name + l - 4, ".pub") != 0)
                        continue;

                char **v = realloc(names, (n_names + 1) * sizeof(*v));
                if (!v) {
                        r = reason_fail(reason, -ENOMEM, "out of memory");
                        break;
                }
                names = v;
                if (asprintf(&names[n_names], "%s/%s", path, de->d_name) < 0) {
                        r = reason_fail(reason, -ENOMEM, "out of memory");
                        break;
                }
                n_names++;
        }
        (void) closedir(d);

        if (r == 0 && n_names == 0)
                r = reason_fail(reason, -ENOENT, "no *.pub public key file in key folder %s", path);
        if (r == 0) {
                qsort(names, n_names, sizeof(*names), cmp_strings);
                for (size_t i = 0; i < n_names && r == 0; i++)
                        r = keyring_add_file(kr, names[i], reason);
        }
        strv_free(names, n_names);
        return r;
}

int minisign_keyring_load(const char *path, MinisignKeyring **ret, Reason *reason) {
        struct stat st;
        int r;

        if (!path || !ret)
                return reason_fail(reason, -EINVAL, "no trusted key path given");

        if (stat(path, &st) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return reason_fail(reason, r, "trusted key path %s does not exist", path);
                return reason_fail(reason, r, "failed to access trusted key path %s: %s", path,
                                   strerror(-r));
        }

        _cleanup_(minisign_keyring_freep) MinisignKeyring *kr = calloc(1, sizeof(*kr));
        if (!kr)
                return reason_fail(reason, -ENOMEM, "out of memory");

        if (S_ISDIR(st.st_mode))
                r = keyring_add_folder(kr, path, reason);
        else
                r = keyring_add_file(kr, path, reason);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(kr);
        return 0;
}

MinisignKeyring *minisign_keyring_free(MinisignKeyring *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n_keys; i++)
                free(k->keys[i].path);
        free(k->keys);
        free(k);
        return NULL;
}

/* Called once every check has passed, so the only failure it has to undo
 * is its own. */
static MinisignSig *sig_new(const char *comment, size_t len) {
        MinisignSig *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->trusted_comment = strndup(comment, len);
        if (!s->trusted_comment) {
                free(s);
                return NULL;
        }
        return s;
}

/* origin names the file in messages; NULL when parsing text from memory. */
static int sig_parse(const char *origin, const char *text, size_t len, MinisignSig **ret,
                     Reason *reason) {
        const char *sep = origin ? " file " : "";
        const char *name = origin ? origin : "";
        uint8_t raw[SIG_BYTES], global[GLOBAL_SIG_BYTES];
        MinisignSig *s;
        Line lines[4];
        size_t n;

        if (!text)
                return reason_reject(reason, -EBADMSG, "malformed signature%s%s: no text", sep,
                                     name);
        if (memchr(text, '\0', len))
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: it contains a NUL byte", sep, name);
        n = split_lines(text, len, lines, ELEMENTSOF(lines));
        if (n != 4)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: expected 4 lines, found %zu", sep,
                                     name, n);
        if (!line_has_prefix(&lines[0], UNTRUSTED_PREFIX))
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: line 1 does not start with "
                                     "\"" UNTRUSTED_PREFIX "\"",
                                     sep, name);
        if (base64_decode_exact(&lines[1], raw, sizeof(raw)) < 0)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: line 2 is not the base64 of a "
                                     "%d-byte signature",
                                     sep, name, SIG_BYTES);
        if (memcmp(raw, "ED", 2) != 0 && memcmp(raw, "Ed", 2) != 0)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: unknown signature algorithm "
                                     "0x%02x%02x (expected \"ED\" or \"Ed\")",
                                     sep, name, raw[0], raw[1]);
        if (!line_has_prefix(&lines[2], TRUSTED_PREFIX))
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: line 3 does not start with "
                                     "\"" TRUSTED_PREFIX "\"",
                                     sep, name);

        if (base64_decode_exact(&lines[3], global, sizeof(global)) < 0)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature%s%s: line 4 is not the base64 of a "
                                     "%d-byte global signature",
                                     sep, name, GLOBAL_SIG_BYTES);

        s = sig_new(lines[2].p + strlen(TRUSTED_PREFIX), lines[2].n - strlen(TRUSTED_PREFIX));
        if (!s)
                return reason_fail(reason, -ENOMEM, "out of memory");
        s->prehashed = raw[1] == 'D';
        memcpy(s->key_id, raw + 2, sizeof(s->key_id));
        memcpy(s->sig, raw + 10, sizeof(s->sig));
        memcpy(s->global_sig, global, sizeof(s->global_sig));

        *ret = s;
        return 0;
}

int minisign_sig_parse(const char *text, size_t len, MinisignSig **ret, Reason *reason) {
        if (!ret)
                return reason_fail(reason, -EINVAL, "no place for the parsed signature");
        return sig_parse(NULL, text, len, ret, reason);
}

int minisign_sig_load(const char *path, MinisignSig **ret, Reason *reason) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        if (!path || !ret)
                return reason_fail(reason, -EINVAL, "no signature file given");

        r = read_file_bounded(path, MINISIGN_FILE_MAX, &text, &len);
        if (r == -ENOENT)
                return reason_reject(reason, r, "signature file %s does not exist", path);
        if (r == -EFBIG)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature file %s: larger than %d bytes", path,
                                     MINISIGN_FILE_MAX);
        if (r == -EISDIR)
                return reason_reject(reason, -EBADMSG,
                                     "malformed signature file %s: it is a folder", path);
        if (r < 0)
                return reason_fail(reason, r, "failed to read signature file %s: %s", path,
                                   strerror(-r));

        return sig_parse(path, text, len, ret, reason);
}

MinisignSig *minisign_sig_free(MinisignSig *s) {
        if (!s)
                return NULL;
        free(s->trusted_comment);
        free(s);
        return NULL;
}

/* Returns 1 when sig is pk's Ed25519 signature of msg, 0 when it is not,
 * -errno when libcrypto cannot run the check at all. */
static int ed25519_verify(const uint8_t pk[32], const uint8_t sig[64], const void *msg,
                          size_t len) {
        int r;

        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey =
                EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32);
        if (!pkey) {
                ERR_clear_error();
                return -ENOMEM;
        }
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        r = EVP_DigestVerify(ctx, sig, 64, msg, len);
        /* A mismatch leaves an entry on the thread's error queue; it is an
         * answer, not an error, and must not leak into later calls. */
        ERR_clear_error();
        if (r == 1)
                return 1;
        if (r == 0)
                return 0;
        return -EIO;
}

static bool keyring_has_id(const MinisignKeyring *kr, const uint8_t id[8]) {
        for (size_t i = 0; i < kr->n_keys; i++)
                if (memcmp(kr->keys[i].key_id, id, 8) == 0)
                        return true;
        return false;
}

static int reject_unknown_key(const MinisignSig *sig, Reason *reason) {
        char hex[KEY_ID_HEX_MAX];
        key_id_to_hex(sig->key_id, hex);
        return reason_reject(reason, -ENOKEY, "signed by an untrusted key (key id %s)", hex);
}

/* msg is the content for "Ed" or its BLAKE2b-512 for "ED". Every key with
 * the signature's id is tried, so two key files sharing an id cannot hide
 * the one that verifies. */
static int verify_message(const MinisignKeyring *kr, const MinisignSig *sig, const void *msg,
                          size_t len, const MinisignKey **ret_key, Reason *reason) {
        char hex[KEY_ID_HEX_MAX];
        bool content_ok = false, found = false;
        size_t tc_len = strlen(sig->trusted_comment);
        int r;

        _cleanup_free_ uint8_t *global = malloc(sizeof(sig->sig) + tc_len);
        if (!global)
                return reason_fail(reason, -ENOMEM, "out of memory");
        memcpy(global, sig->sig, sizeof(sig->sig));
        memcpy(global + sizeof(sig->sig), sig->trusted_comment, tc_len);

        for (size_t i = 0; i < kr->n_keys; i++) {
                const MinisignKey *k = &kr->keys[i];

                if (memcmp(k->key_id, sig->key_id, sizeof(k->key_id)) != 0)
                        continue;
                found = true;

                r = ed25519_verify(k->pk, sig->sig, msg, len);
                if (r < 0)
                        return reason_fail(reason, r, "failed to run Ed25519 verification: %s",
                                           strerror(-r));
                if (r == 0)
                        continue;
                content_ok = true;

                r = ed25519_verify(k->pk, sig->global_sig, global, sizeof(sig->sig) + tc_len);
                if (r < 0)
                        return reason_fail(reason, r, "failed to run Ed25519 verification: %s",
                                           strerror(-r));
                if (r == 0)
                        continue;

                if (ret_key)
                        *ret_key = k;
                return 0;
        }

        if (!found)
                return reject_unknown_key(sig, reason);
        key_id_to_hex(sig->key_id, hex);
        if (content_ok)
                return reason_reject(reason, -EKEYREJECTED,
                                     "the trusted comment does not match its signature (key id "
                                     "%s)",
                                     hex);
        return reason_reject(reason, -EBADMSG, "signature does not match the content");
}

static int blake2b512_fd(int fd, uint64_t max_size, uint8_t out[64], Reason *reason) {
        unsigned int out_len = 0;
        uint64_t total = 0;

        _cleanup_(evp_md_freep) EVP_MD *md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
        if (!md) {
                ERR_clear_error();
                return reason_fail(reason, -EOPNOTSUPP, "libcrypto offers no BLAKE2b-512");
        }
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return reason_fail(reason, -ENOMEM, "out of memory");
        if (EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
                ERR_clear_error();
                return reason_fail(reason, -EIO, "failed to start BLAKE2b-512");
        }
        _cleanup_free_ uint8_t *buf = malloc(HASH_CHUNK);
        if (!buf)
                return reason_fail(reason, -ENOMEM, "out of memory");

        for (;;) {
                /* pread() from an explicit offset: the caller's file offset
                 * may be anywhere. */
                ssize_t n = pread(fd, buf, HASH_CHUNK, (off_t) total);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        return reason_fail(reason, r, "failed to read the signed content: %s",
                                           strerror(-r));
                }
                if (n == 0)
                        break;
                total += (uint64_t) n;
                /* The file may grow after fstat(); the limit still holds. */
                if (total > max_size)
                        return reason_reject(reason, -EFBIG,
                                             "the signed content is larger than the limit of "
                                             "%" PRIu64 " bytes",
                                             max_size);
                if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1) {
                        ERR_clear_error();
                        return reason_fail(reason, -EIO, "failed to compute BLAKE2b-512");
                }
        }

        if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1 || out_len != 64) {
                ERR_clear_error();
                return reason_fail(reason, -EIO, "failed to compute BLAKE2b-512");
        }
        return 0;
}

static int blake2b512_buffer(const void *data, size_t len, uint8_t out[64], Reason *reason) {
        unsigned int out_len = 0;

        _cleanup_(evp_md_freep) EVP_MD *md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
        if (!md) {
                ERR_clear_error();
                return reason_fail(reason, -EOPNOTSUPP, "libcrypto offers no BLAKE2b-512");
        }
        if (EVP_Digest(data, len, out, &out_len, md, NULL) != 1 || out_len != 64) {
                ERR_clear_error();
                return reason_fail(reason, -EIO, "failed to compute BLAKE2b-512");
        }
        return 0;
}

int minisign_verify_fd(const MinisignKeyring *kr, const MinisignSig *sig, int fd, uint64_t max_size,
                       const MinisignKey **ret_key, Reason *reason) {
        struct stat st;
        int r;

        if (!kr || !sig || fd < 0)
                return reason_fail(reason, -EINVAL, "nothing to verify");
        if (!keyring_has_id(kr, sig->key_id))
                return reject_unknown_key(sig, reason);

        if (fstat(fd, &st) < 0) {
                r = -errno;
                return reason_fail(reason, r, "failed to inspect the signed content: %s",
                                   strerror(-r));
        }
        /* Content is read from offset 0 and mapped, which needs a file. */
        if (!S_ISREG(st.st_mode))
                return reason_fail(reason, -EINVAL, "the signed content is not a regular file");
        if ((uint64_t) st.st_size > max_size)
                return reason_reject(reason, -EFBIG,
                                     "the signed content is larger than the limit of %" PRIu64
                                     " bytes",
                                     max_size);

        if (sig->prehashed) {
                uint8_t digest[64];

                r = blake2b512_fd(fd, max_size, digest, reason);
                if (r < 0)
                        return r;
                return verify_message(kr, sig, digest, sizeof(digest), ret_key, reason);
        }

        /* Legacy signatures sign the content itself, and Ed25519 needs it in
         * one piece: map it rather than copy it onto the heap. */
        if (st.st_size == 0)
                return verify_message(kr, sig, "", 0, ret_key, reason);
        if ((uint64_t) st.st_size > SIZE_MAX)
                return reason_reject(reason, -EFBIG,
                                     "the signed content is too large to map into memory");

        size_t size = (size_t) st.st_size;
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
                r = -errno;
                return reason_fail(reason, r, "failed to map the signed content: %s", strerror(-r));
        }
        r = verify_message(kr, sig, map, size, ret_key, reason);
        (void) munmap(map, size);
        return r;
}

int minisign_verify_buffer(const MinisignKeyring *kr, const MinisignSig *sig, const void *data,
                           size_t len, const MinisignKey **ret_key, Reason *reason) {
        uint8_t digest[64];
        int r;

        if (!kr || !sig || (!data && len > 0))
                return reason_fail(reason, -EINVAL, "nothing to verify");
        if (!keyring_has_id(kr, sig->key_id))
                return reject_unknown_key(sig, reason);

        if (!sig->prehashed)
                return verify_message(kr, sig, data ? data : "", len, ret_key, reason);

        r = blake2b512_buffer(data ? data : "", len, digest, reason);
        if (r < 0)
                return r;
        return verify_message(kr, sig, digest, sizeof(digest), ret_key, reason);
}
