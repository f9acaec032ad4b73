/* health.c: HTTP probes of the managed service (health.h). Answers are
 * bounded in size and time; TLS is verified unless [health] insecure. */
#include "health.h"

#include "curldl.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fetch.h"

#define BODY_MAX (64 * 1024)

struct HealthProbe {
        CURL *curl;
        const Config *config;
        char body[BODY_MAX + 1];
        MemBody got; /* collects into body */
};

int health_probe_new(const Config *c, HealthProbe **ret) {
        HealthProbe *p = calloc(1, sizeof(HealthProbe));
        if (!p)
                return -ENOMEM;
        p->config = c;
        p->curl = curl_easy_init();
        if (!p->curl) {
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

HealthProbe *health_probe_free(HealthProbe *p) {
        if (!p)
                return NULL;
        curl_easy_cleanup(p->curl);
        free(p);
        return NULL;
}

/* One bounded GET; returns the HTTP status or -errno. */
static int probe_get(HealthProbe *p, const char *url, uint64_t timeout_usec, Reason *reason) {
        CURL *c = p->curl;
        long ms = (long) (timeout_usec / 1000);
        long status = 0;

        p->got = (MemBody){.data = p->body, .max = BODY_MAX};
        curl_easy_reset(c);
        (void) curl_easy_setopt(c, CURLOPT_URL, url);
        (void) curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
        (void) curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 1L);
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem_body);
        (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, &p->got);
        (void) curl_easy_setopt(c, CURLOPT_USERAGENT, "slotd/" SLOTD_VERSION);
        (void) curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the service is local */
        if (p->config->health_ca_file)
                (void) curl_easy_setopt(c, CURLOPT_CAINFO, p->config->health_ca_file);
        if (p->config->health_insecure) {
                (void) curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
                (void) curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }

        CURLcode cc = curl_easy_perform(c);
        if (cc != CURLE_OK) {
                if (p->got.overflow)
                        return reason_fail(reason, -EFBIG, "%s answered more than %d bytes", url,
                                           BODY_MAX);
                return reason_fail(reason, cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO,
                                   "%s: %s", url, curl_easy_strerror(cc));
        }
        (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        p->body[p->got.len] = '\0';
        return (int) status;
}

int health_check(HealthProbe *p, uint64_t timeout_usec, Reason *reason) {
        int status = probe_get(p, p->config->health_url, timeout_usec, reason);
        if (status < 0)
                return status;
        if (status < 200 || status > 299)
                return reason_fail(reason, -EIO, "%s answered HTTP %d", p->config->health_url,
                                   status);
        return 0;
}

int health_version(HealthProbe *p, uint64_t timeout_usec, char *buf, size_t size, Reason *reason) {
        const char *url = p->config->version_url;
        int status = probe_get(p, url, timeout_usec, reason);
        if (status < 0)
                return status;
        if (status < 200 || status > 299)
                return reason_fail(reason, -EIO, "%s answered HTTP %d", url, status);

        _cleanup_(json_decrefp) json_t *doc = json_loadb(p->body, p->got.len, 0, NULL);
        json_t *v = json_object_get(doc, p->config->version_field);
        if (!json_is_string(v))
                return reason_fail(reason, -EBADMSG, "%s: no string field \"%s\" in the answer",
                                   url, p->config->version_field);
        (void) snprintf(buf, size, "%s", json_string_value(v));
        return 0;
}
