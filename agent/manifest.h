/* manifest.h: the coordinator's signed update manifest (SPEC section 5). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cleanup.h"
#include "config.h"
#include "reason.h"
#include "store.h"

#define MANIFEST_MAX (1024 * 1024)

typedef struct Manifest {
        char name[128];
        char version[VERSION_MAX];
        char *url; /* absolute, resolved against the manifest URL */
        uint64_t size;
        uint8_t sha256[32];
        char sha256_hex[65];
        time_t expires; /* 0 when absent */
        bool has_rollout;
        int percent;
        char *salt;
        bool downgrade;
} Manifest;

/* Parses a manifest (already signature-checked) and resolves its package
 * URL against manifest_url. Returns 0 or a rejection -EBADMSG naming the
 * bad field. */
int manifest_parse(const char *json, size_t len, const char *manifest_url, Manifest **ret,
                   Reason *reason);
Manifest *manifest_free(Manifest *m);
DEFINE_CLEANUP_FUNC(Manifest *, manifest_free);

/* The URL of a URL's detached signature: path + ".minisig", same query. */
int manifest_signature_url(const char *url, char **ret);

/* Whether worker_id takes part in the manifest's rollout:
 * sha256(salt + worker_id) as a big-endian number, mod 100, < percent. */
bool manifest_in_rollout(const Manifest *m, const char *worker_id);

typedef enum Offer {
        OFFER_INSTALL,    /* a newer (or allowed) version for this worker */
        OFFER_UP_TO_DATE, /* the active slot already runs it */
        OFFER_NOT_IN_ROLLOUT,
        OFFER_KNOWN_BAD, /* the inactive slot holds this version, marked bad */
} Offer;

/* Decides what to do with a verified manifest: rejects another name, an
 * expired manifest, a downgrade (unless allowed by the manifest or the
 * config), a size above max_package_size. Returns an Offer (>= 0) or a
 * rejection. */
int manifest_decide(const Manifest *m, const Config *c, const StoreState *st, int active,
                    time_t now, Reason *reason);
