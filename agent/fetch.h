/* fetch.h: downloads from the coordinator with libcurl: small documents
 * (manifest, signatures) into memory, packages into one resumable partial
 * file under state_dir. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "curldl.h"
#include "manifest.h"
#include "reason.h"

/* Options every request to the coordinator shares: TLS verified with
 * [coordinator] ca_file, the optional client certificate, connect_timeout,
 * http(s) only, up to 5 redirects, an HTTP status >= 400 as an error
 * (CURLE_HTTP_RETURNED_ERROR), proxies from the environment (libcurl's
 * default). */
void fetch_setup(CURL *h, const Config *c, const char *url);

/* A libcurl write callback that collects a body in memory, refusing
 * (and marking overflow) past max bytes. */
typedef struct MemBody {
        char *data;
        size_t len, max;
        bool overflow;
} MemBody;
size_t on_mem_body(char *data, size_t size, size_t n, void *userdata);

/* The wait before retry number attempt + 1: 1 s doubling per attempt, at
 * most 60 s, with jitter (50% to 150% of the step). */
uint64_t fetch_backoff_usec(unsigned attempt);

/* How many connections fetch_document() has opened in this process: a
 * poll that opened one (over HTTPS) also ran a TLS handshake. Main thread
 * only. */
uint64_t fetch_document_connections(void);

/* GETs url into memory (at most max bytes). With etag, sends
 * If-None-Match; a 304 returns 0 with *ret_not_modified set and no body.
 * Returns 0; -ENOENT on 404; -EFBIG past max; -EIO otherwise (reason
 * names the URL and the cause). */
int fetch_document(const Config *c, const char *url, size_t max, const char *etag, char **ret_body,
                   size_t *ret_len, char **ret_etag, bool *ret_not_modified, Reason *reason);

typedef void (*fetch_progress_fn)(uint64_t done, uint64_t total, double bytes_per_sec,
                                  void *userdata);

/* Downloads m->url into <state_dir>/download/, resuming a partial file of
 * the same package with Range, retrying with exponential backoff and
 * jitter, within update_timeout, accepting at most m->size bytes, and
 * checking SHA-256. Returns 0 with the path of the complete file; a
 * rejection for a size or hash mismatch; -ENOSPC when the disk is too
 * full; -ETIMEDOUT or -EIO when it could not be fetched. */
int fetch_package(const Config *c, const Manifest *m, fetch_progress_fn progress, void *userdata,
                  char **ret_path, Reason *reason);

/* Downloads url into dest (created 0600) without a known size or hash:
 * at most max bytes, within update_timeout, retrying transient failures.
 * For `slotctl install URL`, whose signature is then checked as for a
 * file. Returns 0, -EFBIG past max, or -errno with a reason. */
int fetch_file(const Config *c, const char *url, uint64_t max, const char *dest,
               fetch_progress_fn progress, void *userdata, Reason *reason);

/* Deletes downloads other than the package with this hash (NULL: all). */
void fetch_prune(const Config *c, const char *keep_sha256_hex);
