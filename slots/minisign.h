/* minisign.h: minisign public keys and detached signatures, verified with
 * libcrypto's Ed25519 (prehashed "ED" over BLAKE2b-512, and legacy "Ed"). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "reason.h"

typedef struct MinisignKey {
        uint8_t key_id[8];
        uint8_t pk[32];
        char *path; /* the .pub file it came from, for messages */
} MinisignKey;

typedef struct MinisignKeyring {
        MinisignKey *keys;
        size_t n_keys;
} MinisignKeyring;

typedef struct MinisignSig {
        int prehashed; /* 1 for "ED", 0 for legacy "Ed" */
        uint8_t key_id[8];
        uint8_t sig[64];
        char *trusted_comment; /* text after "trusted comment: " */
        uint8_t global_sig[64];
} MinisignSig;

/* Loads one .pub file, or every *.pub file of a folder (sorted by name).
 * Returns 0, -ENOENT when the path or the folder's keys are missing,
 * -EBADMSG for a malformed key file (reason names the file). These are
 * failures of the operator's configuration; callers that refuse a package
 * for want of a key mark the reason rejected themselves. */
int minisign_keyring_load(const char *path, MinisignKeyring **ret, Reason *reason);
MinisignKeyring *minisign_keyring_free(MinisignKeyring *k);
DEFINE_CLEANUP_FUNC(MinisignKeyring *, minisign_keyring_free);

/* Parses the text of a .minisig file. Returns 0 or -EBADMSG. */
int minisign_sig_parse(const char *text, size_t len, MinisignSig **ret, Reason *reason);
/* Reads and parses a .minisig file (at most 4 KiB). -ENOENT when missing. */
int minisign_sig_load(const char *path, MinisignSig **ret, Reason *reason);
MinisignSig *minisign_sig_free(MinisignSig *s);
DEFINE_CLEANUP_FUNC(MinisignSig *, minisign_sig_free);

/* Verifies the whole content of fd (read from offset 0 to its end, at most
 * max_size bytes, in bounded memory for "ED") against sig with the keyring.
 * Returns 0 and sets *ret_key (borrowed from kr) when a trusted key verifies
 * both the signature and the global signature over the trusted comment;
 * -ENOKEY when no trusted key has the signature's key id, -EBADMSG when the
 * content does not match, -EKEYREJECTED when the trusted comment was
 * tampered with, -EFBIG past max_size (all rejections recorded in
 * reason), other -errno on read errors (failures). The file offset is left
 * undefined; callers seek before reuse. */
int minisign_verify_fd(const MinisignKeyring *kr, const MinisignSig *sig, int fd, uint64_t max_size,
                       const MinisignKey **ret_key, Reason *reason);

/* The same for a buffer in memory (manifests). */
int minisign_verify_buffer(const MinisignKeyring *kr, const MinisignSig *sig, const void *data,
                           size_t len, const MinisignKey **ret_key, Reason *reason);
