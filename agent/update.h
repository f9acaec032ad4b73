/* update.h: pulling from the coordinator: fetch and verify the manifest,
 * decide, download, install (SPEC section 5). */
#pragma once

#include <stdbool.h>

#include "fetch.h"
#include "manifest.h"
#include "operation.h"

typedef struct CheckResult {
        Manifest *manifest; /* NULL when none was read */
        int offer;          /* an Offer */
        bool not_modified;  /* answered 304: the cached manifest was used */
} CheckResult;

void check_result_done(CheckResult *r);

/* Fetches the manifest (with If-None-Match when use_cache, reusing the
 * cached, verified manifest on a 304), checks its detached signature
 * before parsing it, and decides. A manifest and signature from two
 * different releases (a publish during the poll) are fetched again before
 * a mismatch counts. Returns 0 with ret filled; a rejection; -errno. */
int update_check(Agent *a, bool use_cache, CheckResult *ret, Reason *reason);

/* Reads the manifest cached by the last update_check() with use_cache,
 * checks its signature again and parses it: how slotd's update process
 * receives the manifest its parent decided on. */
int update_cached_manifest(Agent *a, Manifest **ret, Reason *reason);

/* Downloads the manifest's package (and its .minisig when the server has
 * one) and installs it with op_install_downloaded(). */
int update_apply(Agent *a, const Manifest *m, fetch_progress_fn progress, void *userdata,
                 Reason *reason);
