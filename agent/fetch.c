/* fetch.c: downloads (fetch.h). One partial file at most lives in
 * <state_dir>/download, named after the package's hash, so a download
 * broken by a network fault or a restart resumes where it stopped. */
#include "fetch.h"

#include "curldl.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "fileio.h"

#define DOWNLOAD_DIR "download"
#define BACKOFF_MAX_USEC (60 * UINT64_C(1000000))

static void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

static void curl_slist_free_allp(struct curl_slist **l) {
        curl_slist_free_all(*l);
}

/* Aborts a transfer that received nothing for stall_usec. curl's own
 * low-speed limit averages over several seconds and fires late after a
 * burst; this counts from the last byte. */
typedef struct StallWatch {
        uint64_t stall_usec;
        uint64_t last_rx;
        curl_off_t last_now;
        bool stalled;
} StallWatch;

static int on_xfer_info(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow) {
        StallWatch *w = userdata;
        (void) dltotal;
        (void) ultotal;
        (void) ulnow;
        uint64_t now = now_mono();
        if (dlnow != w->last_now || w->last_rx == 0) {
                w->last_now = dlnow;
                w->last_rx = now;
                return 0;
        }
        if (now - w->last_rx > w->stall_usec) {
                w->stalled = true;
                return 1; /* abort: CURLE_ABORTED_BY_CALLBACK */
        }
        return 0;
}

static void watch_stalls(CURL *h, StallWatch *w, uint64_t stall_usec) {
        *w = (StallWatch){.stall_usec = stall_usec ? stall_usec : USEC_PER_SEC};
        (void) curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer_info);
        (void) curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
        (void) curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
}

void fetch_setup(CURL *h, const Config *c, const char *url) {
        (void) curl_easy_setopt(h, CURLOPT_URL, url);
        (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        (void) curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        (void) curl_easy_setopt(h, CURLOPT_USERAGENT, "slotd/" SLOTD_VERSION);
        (void) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                                (long) (c->connect_timeout / 1000) ?: 1L);
        (void) curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca_file)
                (void) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (c->client_cert) {
                (void) curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
                (void) curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
        }
}

static int curl_failure(CURL *h, CURLcode cc, const char *url, const char *errbuf, Reason *reason) {
        long status = 0;
        (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_HTTP_RETURNED_ERROR)
                return reason_fail(reason, status == 404 ? -ENOENT : -EIO, "%s: HTTP %ld", url,
                                   status);
        if (cc == CURLE_OPERATION_TIMEDOUT)
                return reason_fail(reason, -ETIMEDOUT, "%s: %s", url,
                                   errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return reason_fail(reason, -EIO, "%s: %s", url,
                           errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

size_t on_mem_body(char *data, size_t size, size_t n, void *userdata) {
        MemBody *b = userdata;
        size_t len = size * n;
        if (b->len + len > b->max) {
                b->overflow = true;
                return 0;
        }
        memcpy(b->data + b->len, data, len);
        b->len += len;
        return len;
}

typedef struct EtagCapture {
        char etag[256];
} EtagCapture;

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        EtagCapture *e = userdata;
        size_t len = size * n;
        if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
                size_t start = 5, end = len;
                while (start < end && (data[start] == ' ' || data[start] == '\t'))
                        start++;
                while (end > start &&
                       (data[end - 1] == '\r' || data[end - 1] == '\n' || data[end - 1] == ' '))
                        end--;
                if (end - start < sizeof(e->etag)) {
                        memcpy(e->etag, data + start, end - start);
                        e->etag[end - start] = '\0';
                }
        }
        return len;
}

static uint64_t document_connections;

uint64_t fetch_document_connections(void) {
        return document_connections;
}

int fetch_document(const Config *c, const char *url, size_t max, const char *etag, char **ret_body,
                   size_t *ret_len, char **ret_etag, bool *ret_not_modified, Reason *reason) {
        /* One handle for all documents: a poll reuses the kept-alive
         * connection and TLS session instead of a fresh handshake. */
        static CURL *h;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        EtagCapture captured = {.etag = ""};

        if (!h) {
                h = curl_easy_init();
                if (!h)
                        return reason_fail(reason, -ENOMEM, "cannot initialise libcurl: %s",
                                           curl_easy_strerror(CURLE_FAILED_INIT));
        } else
                curl_easy_reset(h);
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        MemBody body = {.data = buf, .max = max};

        fetch_setup(h, c, url);
        (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_mem_body);
        (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        (void) curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        (void) curl_easy_setopt(h, CURLOPT_HEADERDATA, &captured);
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                                (long) ((c->connect_timeout + 30 * UINT64_C(1000000)) / 1000));
        if (etag && *etag) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "If-None-Match: %s", etag) < 0)
                        return -ENOMEM;
                headers = curl_slist_append(NULL, line);
                if (!headers)
                        return -ENOMEM;
                (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        }

        CURLcode cc = curl_easy_perform(h);
        long opened = 0;
        if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK && opened > 0)
                document_connections += (uint64_t) opened;
        /* The handle outlives this call: drop what points at our stack. */
        (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        if (body.overflow)
                return reason_reject(reason, -EFBIG, "%s: answer larger than %zu bytes", url, max);
        if (cc != CURLE_OK)
                return curl_failure(h, cc, url, errbuf, reason);

        long status = 0;
        (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (ret_not_modified)
                *ret_not_modified = status == 304;
        if (status == 304) {
                *ret_body = NULL;
                *ret_len = 0;
                return 0;
        }
        if (status < 200 || status > 299)
                return reason_fail(reason, -EIO, "%s: HTTP %ld", url, status);
        buf[body.len] = '\0';
        if (ret_etag)
                *ret_etag = captured.etag[0] ? strdup(captured.etag) : NULL;
        *ret_len = body.len;
        *ret_body = TAKE_PTR(buf);
        return 0;
}

static int download_dir(const Config *c, char *buf, size_t size) {
        (void) snprintf(buf, size, "%s/" DOWNLOAD_DIR, c->state_dir);
        return mkdir_p(buf, 0700);
}

void fetch_prune(const Config *c, const char *keep_sha256_hex) {
        char dir[4096];
        if (download_dir(c, dir, sizeof(dir)) < 0)
                return;
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (keep_sha256_hex && strncmp(de->d_name, keep_sha256_hex, 64) == 0)
                        continue;
                (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        (void) closedir(d);
}

/* One download in progress: the partial file, the running hash of what
 * it holds, and the bounds. */
typedef struct Download {
        const Manifest *m;
        int fd;
        uint64_t have; /* bytes in the partial file */
        EVP_MD_CTX *sha;
        CURL *h;
        bool too_big;
        bool checked_range;
        int write_error;
        uint64_t attempt_start_bytes;
        uint64_t start_usec;
        fetch_progress_fn progress;
        void *userdata;
        uint64_t last_progress;
} Download;

static int download_reset(Download *d) {
        if (ftruncate(d->fd, 0) < 0 || lseek(d->fd, 0, SEEK_SET) < 0)
                return -errno;
        d->have = 0;
        if (EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1)
                return -EIO;
        return 0;
}

static size_t on_package_body(char *data, size_t size, size_t n, void *userdata) {
        Download *d = userdata;
        size_t len = size * n;

        if (!d->checked_range) {
                /* The first bytes of this attempt: a server that ignored
                 * Range sends the whole file, so the partial starts over. */
                d->checked_range = true;
                long status = 0;
                (void) curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &status);
                if (d->have > 0 && status == 200) {
                        int r = download_reset(d);
                        if (r < 0) {
                                d->write_error = r;
                                return 0;
                        }
                }
        }
        if (d->have + len > d->m->size) {
                d->too_big = true;
                return 0; /* stop at once: not one byte past the promised size */
        }
        int r = write_all(d->fd, data, len);
        if (r < 0) {
                d->write_error = r;
                return 0;
        }
        if (EVP_DigestUpdate(d->sha, data, len) != 1) {
                d->write_error = -EIO;
                return 0;
        }
        d->have += len;
        uint64_t now = now_mono();
        if (d->progress && now - d->last_progress >= 250000) {
                double secs = (double) (now - d->start_usec) / 1e6;
                d->progress(d->have, d->m->size,
                            secs > 0 ? (double) (d->have - d->attempt_start_bytes) / secs : 0,
                            d->userdata);
                d->last_progress = now;
        }
        return len;
}

/* Hashes what the partial file already holds, so a resumed download
 * ends with the hash of the whole file. */
static int hash_existing(Download *d) {
        uint8_t buf[64 * 1024];
        if (lseek(d->fd, 0, SEEK_SET) < 0)
                return -errno;
        uint64_t total = 0;
        for (;;) {
                ssize_t n = read(d->fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(d->sha, buf, (size_t) n) != 1)
                        return -EIO;
                total += (uint64_t) n;
        }
        d->have = total;
        return 0;
}

uint64_t fetch_backoff_usec(unsigned attempt) {
        uint64_t base = UINT64_C(1000000) << (attempt < 6 ? attempt : 6);
        if (base > BACKOFF_MAX_USEC)
                base = BACKOFF_MAX_USEC;
        uint32_t rnd = 0;
        (void) RAND_bytes((unsigned char *) &rnd, sizeof(rnd));
        /* jitter: 50% to 150% of the step */
        return base / 2 + (uint64_t) ((double) base * ((double) rnd / 4294967296.0));
}

static bool transient(CURLcode cc, long status) {
        if (cc == CURLE_HTTP_RETURNED_ERROR)
                return status >= 500 || status == 408 || status == 429;
        return cc != CURLE_SSL_CACERT_BADFILE && cc != CURLE_PEER_FAILED_VERIFICATION &&
               cc != CURLE_SSL_CERTPROBLEM && cc != CURLE_UNSUPPORTED_PROTOCOL &&
               cc != CURLE_URL_MALFORMAT;
}

static int package_fetch_attempt(const Config *c, Download *d, uint64_t timeout_usec,
                                 CURLcode *ret_cc, long *ret_status, char *errbuf) {
        _cleanup_(curl_easy_cleanupp) CURL *h = curl_easy_init();
        char range[64];
        if (!h)
                return -ENOMEM;

        fetch_setup(h, c, d->m->url);
        (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_package_body);
        (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, d);
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) (timeout_usec / 1000) ?: 1L);
        StallWatch stall;
        watch_stalls(h, &stall, c->stall_timeout);
        (void) curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
        if (d->have > 0) {
                (void) snprintf(range, sizeof(range), "%llu-", (unsigned long long) d->have);
                (void) curl_easy_setopt(h, CURLOPT_RANGE, range);
        }
        d->attempt_start_bytes = d->have;
        d->checked_range = false;
        d->h = h;
        d->start_usec = now_mono();

        *ret_cc = curl_easy_perform(h);
        (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
        d->h = NULL;
        if (stall.stalled)
                (void) snprintf(errbuf, CURL_ERROR_SIZE, "no data for %llu ms: stalled",
                                (unsigned long long) (stall.stall_usec / 1000));
        return 0;
}

int fetch_package(const Config *c, const Manifest *m, fetch_progress_fn progress, void *userdata,
                  char **ret_path, Reason *reason) {
        char dir[4096], partial[4200], final[4200];
        int r;

        r = download_dir(c, dir, sizeof(dir));
        if (r < 0)
                return reason_fail(reason, r, "cannot create %s: %s", dir, strerror(-r));
        (void) snprintf(partial, sizeof(partial), "%s/%s.partial", dir, m->sha256_hex);
        (void) snprintf(final, sizeof(final), "%s/%s.pkg", dir, m->sha256_hex);
        fetch_prune(c, m->sha256_hex);

        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *sha = EVP_MD_CTX_new();
        if (!sha || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)
                return -ENOMEM;

        /* A complete earlier download of the same package is reused after
         * its hash is checked again. */
        const char *source = access(final, F_OK) == 0 ? final : partial;

        _cleanup_close_ int fd = open(source, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return reason_fail(reason, -errno, "cannot open %s: %s", source, strerror(errno));

        Download d = {.m = m, .fd = fd, .sha = sha, .progress = progress, .userdata = userdata};
        r = hash_existing(&d);
        if (r < 0)
                return reason_fail(reason, r, "cannot read %s: %s", source, strerror(-r));
        if (d.have > m->size) {
                r = download_reset(&d);
                if (r < 0)
                        return reason_fail(reason, r, "cannot reset %s: %s", source, strerror(-r));
        }

        uint64_t free_bytes = 0;
        if (free_space(dir, &free_bytes) == 0 && free_bytes < m->size - d.have + (1 << 20))
                return reason_fail(reason, -ENOSPC,
                                   "not enough free space in %s for the download: %llu bytes "
                                   "needed, %llu free",
                                   dir, (unsigned long long) (m->size - d.have),
                                   (unsigned long long) free_bytes);

        uint64_t deadline = now_mono() + c->update_timeout;
        char errbuf[CURL_ERROR_SIZE];
        Reason last = REASON_NULL;
        for (unsigned attempt = 0; d.have < m->size; attempt++) {
                uint64_t now = now_mono();
                if (now >= deadline)
                        return reason_fail(reason, -ETIMEDOUT,
                                           "download of %s did not finish within %llu s%s%s",
                                           m->url,
                                           (unsigned long long) (c->update_timeout / 1000000),
                                           last.text[0] ? ": " : "", last.text);
                if (lseek(fd, 0, SEEK_END) < 0)
                        return reason_fail(reason, -errno, "cannot seek %s", source);

                CURLcode cc;
                long status = 0;
                errbuf[0] = '\0';
                r = package_fetch_attempt(c, &d, deadline - now, &cc, &status, errbuf);
                if (r < 0)
                        return reason_fail(reason, r, "cannot start the download of %s", m->url);
                if (d.too_big) {
                        (void) unlink(source);
                        return reason_reject(reason, -EFBIG,
                                             "%s sent more than the manifest's size of %llu "
                                             "bytes: download stopped",
                                             m->url, (unsigned long long) m->size);
                }
                if (d.write_error < 0)
                        return reason_fail(reason, d.write_error, "cannot write %s: %s", source,
                                           strerror(-d.write_error));
                if (cc == CURLE_OK) {
                        if (d.have < m->size)
                                return reason_reject(reason, -EBADMSG,
                                                     "%s has %llu bytes, the manifest says %llu",
                                                     m->url, (unsigned long long) d.have,
                                                     (unsigned long long) m->size);
                        break;
                }
                if (cc == CURLE_HTTP_RETURNED_ERROR)
                        (void) reason_fail(&last, -EIO, "%s: HTTP %ld", m->url, status);
                else
                        (void) reason_fail(&last, -EIO, "%s: %s", m->url,
                                           errbuf[0] ? errbuf : curl_easy_strerror(cc));
                if (!transient(cc, status) || attempt >= c->retries)
                        return reason_fail(reason, status == 404 ? -ENOENT : -EIO,
                                           "download failed after %u attempt%s: %s", attempt + 1,
                                           attempt ? "s" : "", last.text);
                uint64_t wait = fetch_backoff_usec(attempt) * c->retry_backoff / USEC_PER_SEC;
                now = now_mono();
                if (now + wait > deadline)
                        wait = deadline > now ? deadline - now : 0;
                sleep_usec(wait);
        }

        uint8_t digest[32];
        unsigned dlen = 0;
        if (EVP_DigestFinal_ex(sha, digest, &dlen) != 1)
                return -EIO;
        if (memcmp(digest, m->sha256, 32) != 0) {
                (void) unlink(source);
                return reason_reject(reason, -EBADMSG, "%s does not match the manifest's sha256 %s",
                                     m->url, m->sha256_hex);
        }
        if (d.progress)
                d.progress(d.have, m->size, 0, d.userdata);
        if (source == partial) {
                if (fsync(fd) < 0)
                        return reason_fail(reason, -errno, "cannot sync %s", partial);
                if (rename(partial, final) < 0)
                        return reason_fail(reason, -errno, "cannot rename %s", partial);
        }
        *ret_path = strdup(final);
        return *ret_path ? 0 : -ENOMEM;
}

typedef struct FileSink {
        int fd;
        uint64_t have, max;
        bool too_big;
        int write_error;
        fetch_progress_fn progress;
        void *userdata;
        uint64_t start, last_progress;
} FileSink;

static size_t on_file_body(char *data, size_t size, size_t n, void *userdata) {
        FileSink *f = userdata;
        size_t len = size * n;
        if (f->have + len > f->max) {
                f->too_big = true;
                return 0;
        }
        int r = write_all(f->fd, data, len);
        if (r < 0) {
                f->write_error = r;
                return 0;
        }
        f->have += len;
        uint64_t now = now_mono();
        if (f->progress && now - f->last_progress >= 250000) {
                double secs = (double) (now - f->start) / 1e6;
                f->progress(f->have, 0, secs > 0 ? (double) f->have / secs : 0, f->userdata);
                f->last_progress = now;
        }
        return len;
}

int fetch_file(const Config *c, const char *url, uint64_t max, const char *dest,
               fetch_progress_fn progress, void *userdata, Reason *reason) {
        _cleanup_close_ int fd =
                open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return reason_fail(reason, -errno, "cannot create %s: %s", dest, strerror(errno));

        uint64_t deadline = now_mono() + c->update_timeout;
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_(curl_easy_cleanupp) CURL *h = curl_easy_init();
                char errbuf[CURL_ERROR_SIZE] = "";
                FileSink f = {.fd = fd,
                              .max = max,
                              .progress = progress,
                              .userdata = userdata,
                              .start = now_mono()};
                if (!h)
                        return -ENOMEM;
                if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                        return reason_fail(reason, -errno, "cannot reset %s", dest);
                uint64_t now = now_mono();
                if (now >= deadline)
                        return reason_fail(reason, -ETIMEDOUT,
                                           "download of %s did not finish within %llu s", url,
                                           (unsigned long long) (c->update_timeout / 1000000));
                fetch_setup(h, c, url);
                (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
                (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_file_body);
                (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
                (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                                        (long) ((deadline - now) / 1000) ?: 1L);
                StallWatch stall;
                watch_stalls(h, &stall, c->stall_timeout);
                CURLcode cc = curl_easy_perform(h);
                if (stall.stalled)
                        (void) snprintf(errbuf, sizeof(errbuf), "no data for %llu ms: stalled",
                                        (unsigned long long) (stall.stall_usec / 1000));
                long status = 0;
                (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
                if (f.too_big)
                        return reason_reject(reason, -EFBIG,
                                             "%s is larger than max_package_size (%llu bytes)", url,
                                             (unsigned long long) max);
                if (f.write_error < 0)
                        return reason_fail(reason, f.write_error, "cannot write %s: %s", dest,
                                           strerror(-f.write_error));
                if (cc == CURLE_OK)
                        return fsync(fd) < 0 ? reason_fail(reason, -errno, "cannot sync %s", dest)
                                             : 0;
                if (!transient(cc, status) || attempt >= c->retries)
                        return curl_failure(h, cc, url, errbuf, reason);
                uint64_t wait = fetch_backoff_usec(attempt) * c->retry_backoff / USEC_PER_SEC;
                sleep_usec(wait);
        }
}
