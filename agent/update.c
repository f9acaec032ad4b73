/* update.c: the pull protocol (update.h). The manifest's signature is
 * checked before jansson sees it; the copy cached on disk is kept with its
 * signature and checked again whenever it is read back. What this process
 * verified itself stays in memory for the next 304. */
#include "update.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "minisign.h"

#define SIG_MAX 4096
#define CACHE_BODY "manifest.json"
#define CACHE_SIG "manifest.json.minisig"
#define CACHE_ETAG "manifest.etag"
#define PUBLISH_RACE_RETRIES 2

void check_result_done(CheckResult *r) {
        r->manifest = manifest_free(r->manifest);
}

static int verify_manifest(Agent *a, const char *body, size_t len, const char *sig_text,
                           size_t sig_len, const char *sig_url, Reason *reason) {
        const MinisignKeyring *kr;
        _cleanup_(minisign_sig_freep) MinisignSig *sig = NULL;
        int r = agent_keyring(a, &kr, reason);
        if (r < 0)
                return r;
        r = minisign_sig_parse(sig_text, sig_len, &sig, reason);
        if (r < 0) {
                if (reason)
                        reason->rejected = true;
                return r;
        }
        r = minisign_verify_buffer(kr, sig, body, len, NULL, reason);
        if (r < 0 && reason) {
                char detail[300];
                size_t dl = strnlen(reason->text, sizeof(detail) - 1);
                memcpy(detail, reason->text, dl);
                detail[dl] = '\0';
                (void) snprintf(reason->text, sizeof(reason->text), "manifest signature %.150s: %s",
                                sig_url, detail);
        }
        return r;
}

static int read_cache(Agent *a, const char *name, size_t max, char **ret, size_t *ret_len) {
        char path[4096];
        (void) snprintf(path, sizeof(path), "%s/%s", a->config->state_dir, name);
        return read_file_bounded(path, max, ret, ret_len);
}

static void write_cache(Agent *a, const char *body, size_t len, const char *sig, size_t sig_len,
                        const char *etag) {
        Store *s = a->store;
        /* The body and its signature go first; the ETag last, so a crash in
         * between costs one full fetch, never a stale pairing. */
        (void) unlinkat(s->state_fd, CACHE_ETAG, 0);
        if (write_file_atomic_at(s->state_fd, CACHE_BODY, body, len, 0600) < 0 ||
            write_file_atomic_at(s->state_fd, CACHE_SIG, sig, sig_len, 0600) < 0)
                return;
        if (etag)
                (void) write_file_atomic_at(s->state_fd, CACHE_ETAG, etag, strlen(etag), 0600);
}

/* Keeps a verified manifest (taking *body) with the ETag that names it,
 * for the next 304. Without an ETag there is nothing to match it against. */
static void remember_verified(Agent *a, char **body, size_t len, const char *etag) {
        agent_forget_manifest(a);
        if (!etag || !(a->verified_etag = strdup(etag)))
                return;
        a->verified_manifest = TAKE_PTR(*body);
        a->verified_len = len;
}

int update_check(Agent *a, bool use_cache, CheckResult *ret, Reason *reason) {
        const Config *c = a->config;
        _cleanup_free_ char *sig_url = NULL, *etag = NULL, *body = NULL, *sig = NULL,
                            *new_etag = NULL;
        size_t len = 0, sig_len = 0;
        bool not_modified = false, reused = false;
        int r;

        if (!c->manifest_url)
                return reason_fail(reason, -EINVAL, "no [coordinator] manifest_url in %s", c->path);
        r = manifest_signature_url(c->manifest_url, &sig_url);
        if (r < 0)
                return reason_fail(reason, r, "bad manifest_url %s", c->manifest_url);

        if (use_cache)
                (void) read_cache(a, CACHE_ETAG, 255, &etag, NULL);

        for (int attempt = 0;; attempt++) {
                body = mfree(body);
                sig = mfree(sig);
                new_etag = mfree(new_etag);
                r = fetch_document(c, c->manifest_url, MANIFEST_MAX, attempt == 0 ? etag : NULL,
                                   &body, &len, &new_etag, &not_modified, reason);
                if (r < 0)
                        return r;
                if (not_modified && a->verified_etag && strcmp(etag, a->verified_etag) == 0) {
                        /* Verified by this process already: memory is
                         * trusted, the cache on disk need not be. */
                        reused = true;
                        break;
                }
                if (not_modified) {
                        if (read_cache(a, CACHE_BODY, MANIFEST_MAX, &body, &len) < 0 ||
                            read_cache(a, CACHE_SIG, SIG_MAX, &sig, &sig_len) < 0) {
                                /* The cache is gone: fetch it whole. */
                                etag = mfree(etag);
                                continue;
                        }
                } else {
                        r = fetch_document(c, sig_url, SIG_MAX, NULL, &sig, &sig_len, NULL, NULL,
                                           reason);
                        if (r == -ENOENT)
                                return reason_reject(reason, -EBADMSG,
                                                     "manifest signature %s is missing (HTTP 404)",
                                                     sig_url);
                        if (r < 0)
                                return r;
                }
                r = verify_manifest(a, body, len, sig, sig_len, sig_url, reason);
                if (r == -EBADMSG && not_modified) {
                        /* The cached copy no longer matches its signature
                         * (changed or damaged on disk): not an answer of
                         * the coordinator, so fetch the manifest whole. */
                        etag = mfree(etag);
                        if (reason)
                                *reason = (Reason) REASON_NULL;
                        continue;
                }
                if (r == -EBADMSG && !not_modified && attempt < PUBLISH_RACE_RETRIES) {
                        /* Perhaps a release was published between the two GETs. */
                        (void) usleep(200 * 1000);
                        continue;
                }
                if (r < 0)
                        return r;
                break;
        }

        _cleanup_(manifest_freep) Manifest *m = NULL;
        r = reused ? manifest_parse(a->verified_manifest, a->verified_len, c->manifest_url, &m,
                                    reason)
                   : manifest_parse(body, len, c->manifest_url, &m, reason);
        if (r < 0)
                return r;
        if (!not_modified && use_cache)
                write_cache(a, body, len, sig, sig_len, new_etag);
        if (use_cache && !reused)
                remember_verified(a, &body, len, not_modified ? etag : new_etag);

        int offer =
                manifest_decide(m, c, &a->store->st, store_active(a->store), time(NULL), reason);
        if (offer < 0)
                return offer;
        ret->manifest = TAKE_PTR(m);
        ret->offer = offer;
        ret->not_modified = not_modified;
        return 0;
}

int update_cached_manifest(Agent *a, Manifest **ret, Reason *reason) {
        _cleanup_free_ char *body = NULL, *sig = NULL, *sig_url = NULL;
        size_t len = 0, sig_len = 0;
        int r;

        if (!a->config->manifest_url)
                return reason_fail(reason, -EINVAL, "no [coordinator] manifest_url");
        if (read_cache(a, CACHE_BODY, MANIFEST_MAX, &body, &len) < 0 ||
            read_cache(a, CACHE_SIG, SIG_MAX, &sig, &sig_len) < 0)
                return reason_fail(reason, -ENOENT, "no cached manifest in %s",
                                   a->config->state_dir);
        r = manifest_signature_url(a->config->manifest_url, &sig_url);
        if (r < 0)
                return reason_fail(reason, r, "bad manifest_url %s", a->config->manifest_url);
        r = verify_manifest(a, body, len, sig, sig_len, sig_url, reason);
        if (r < 0)
                return r;
        return manifest_parse(body, len, a->config->manifest_url, ret, reason);
}

int update_apply(Agent *a, const Manifest *m, fetch_progress_fn progress, void *userdata,
                 Reason *reason) {
        _cleanup_free_ char *path = NULL, *sig_url = NULL, *sig = NULL, *sig_path = NULL;
        size_t sig_len = 0;
        Store *s = a->store;
        int r;

        int active = store_active(s);
        const char *from = active >= 0 ? s->st.slots[active].version : NULL;
        agent_emit(a, EVENT_UPDATE_STARTED, from, m->version, active, active == 0 ? 1 : 0, NULL);
        a->update_started = true;

        s->st.phase = PHASE_DOWNLOADING;
        (void) store_save(s);
        r = fetch_package(a->config, m, progress, userdata, &path, reason);
        if (r < 0) {
                agent_emit(a,
                           reason && reason->rejected ? EVENT_UPDATE_REJECTED : EVENT_UPDATE_FAILED,
                           from, m->version, -1, -1, reason ? reason->text : NULL);
                s->st.phase = PHASE_IDLE;
                (void) store_save(s);
                return r;
        }
        agent_emit(a, EVENT_UPDATE_DOWNLOADED, from, m->version, -1, -1, NULL);

        /* The package's own signature, where the coordinator serves one. */
        r = manifest_signature_url(m->url, &sig_url);
        if (r >= 0) {
                Reason ignored = REASON_NULL;
                r = fetch_document(a->config, sig_url, SIG_MAX, NULL, &sig, &sig_len, NULL, NULL,
                                   &ignored);
                if (r >= 0) {
                        if (asprintf(&sig_path, "%s.minisig", path) < 0)
                                r = reason_fail(reason, -ENOMEM, "out of memory");
                        else if ((r = write_file_atomic(sig_path, sig, sig_len, 0600)) < 0)
                                (void) reason_fail(reason, r, "cannot write %s: %s", sig_path,
                                                   strerror(-r));
                } else if (r != -ENOENT)
                        (void) reason_fail(reason, r, "cannot fetch %s: %s", sig_url, ignored.text);
                else
                        r = 0;
                if (r < 0) {
                        s->st.phase = PHASE_IDLE;
                        (void) store_save(s);
                        return r;
                }
        }

        a->allow_downgrade = m->downgrade;
        r = op_install_downloaded(a, path, sig_path, reason);
        a->allow_downgrade = false;
        /* The download has served its purpose, whatever the outcome. */
        fetch_prune(a->config, NULL);
        return r;
}
