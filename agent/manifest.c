/* manifest.c: parsing and judging the coordinator's manifest
 * (manifest.h). The signature is checked by the caller before this file
 * sees a byte of it. */
#include "manifest.h"

#include "curldl.h"
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semver.h"

Manifest *manifest_free(Manifest *m) {
        if (!m)
                return NULL;
        free(m->url);
        free(m->salt);
        free(m);
        return NULL;
}

static void curl_urlp(CURLU **u) {
        if (*u)
                curl_url_cleanup(*u);
}

static int resolve_url(const char *base, const char *ref, char **ret) {
        _cleanup_(curl_urlp) CURLU *u = curl_url();
        char *out = NULL;
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
                return -EINVAL;
        if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK)
                return -EINVAL;
        if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
                return -EINVAL;
        *ret = strdup(out);
        curl_free(out);
        return *ret ? 0 : -ENOMEM;
}

int manifest_signature_url(const char *url, char **ret) {
        _cleanup_(curl_urlp) CURLU *u = curl_url();
        char *path = NULL, *out = NULL;
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                return -EINVAL;
        _cleanup_free_ char *sig_path = NULL;
        int n = asprintf(&sig_path, "%s.minisig", path);
        curl_free(path);
        if (n < 0)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_PATH, sig_path, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
                return -EINVAL;
        *ret = strdup(out);
        curl_free(out);
        return *ret ? 0 : -ENOMEM;
}

static int parse_hex32(const char *s, uint8_t out[32]) {
        if (strlen(s) != 64)
                return -EINVAL;
        for (int i = 0; i < 32; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        for (int i = 0; i < 64; i++)
                if (!strchr("0123456789abcdefABCDEF", s[i]))
                        return -EINVAL;
        return 0;
}

static int parse_time(const char *s, time_t *ret) {
        struct tm tm = {0};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -EINVAL;
        if (*end == '.') /* fractional seconds */
                for (end++; *end >= '0' && *end <= '9'; end++)
                        ;
        long offset = 0;
        if (*end == 'Z' || *end == 'z')
                end++;
        else if (*end == '+' || *end == '-') {
                /* Exactly ±HH:MM, checked before anything is skipped. */
                const char *o = end + 1;
                if (strlen(o) < 5 || !isdigit((unsigned char) o[0]) ||
                    !isdigit((unsigned char) o[1]) || o[2] != ':' ||
                    !isdigit((unsigned char) o[3]) || !isdigit((unsigned char) o[4]))
                        return -EINVAL;
                int hh = (o[0] - '0') * 10 + (o[1] - '0'), mm = (o[3] - '0') * 10 + (o[4] - '0');
                if (hh > 23 || mm > 59)
                        return -EINVAL;
                offset = (hh * 3600L + mm * 60L) * (*end == '+' ? 1 : -1);
                end += 6;
        } else
                return -EINVAL;
        if (*end != '\0')
                return -EINVAL;
        *ret = timegm(&tm) - offset;
        return 0;
}

int manifest_parse(const char *json, size_t len, const char *manifest_url, Manifest **ret,
                   Reason *reason) {
        json_error_t jerr;
        _cleanup_(json_decrefp) json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(doc))
                return reason_reject(reason, -EBADMSG, "manifest is not a JSON object: %s",
                                     doc ? "another JSON value" : jerr.text);

        _cleanup_(manifest_freep) Manifest *m = calloc(1, sizeof(Manifest));
        if (!m)
                return -ENOMEM;

        json_t *name = json_object_get(doc, "name"), *version = json_object_get(doc, "version"),
               *url = json_object_get(doc, "url"), *size = json_object_get(doc, "size"),
               *sha = json_object_get(doc, "sha256"), *expires = json_object_get(doc, "expires"),
               *rollout = json_object_get(doc, "rollout"),
               *downgrade = json_object_get(doc, "downgrade");

        if (!json_is_string(name) || json_string_length(name) >= sizeof(m->name))
                return reason_reject(reason, -EBADMSG, "manifest: missing or bad \"name\"");
        (void) snprintf(m->name, sizeof(m->name), "%s", json_string_value(name));
        if (!json_is_string(version) || !semver_valid(json_string_value(version)))
                return reason_reject(reason, -EBADMSG,
                                     "manifest: missing or invalid \"version\" (SemVer 2.0.0)");
        (void) snprintf(m->version, sizeof(m->version), "%s", json_string_value(version));
        if (!json_is_string(url) || json_string_length(url) == 0 || json_string_length(url) > 4096)
                return reason_reject(reason, -EBADMSG, "manifest: missing or bad \"url\"");
        if (resolve_url(manifest_url, json_string_value(url), &m->url) < 0)
                return reason_reject(reason, -EBADMSG, "manifest: cannot resolve \"url\" %s",
                                     json_string_value(url));
        if (strncmp(m->url, "https://", 8) != 0 && strncmp(m->url, "http://", 7) != 0)
                return reason_reject(reason, -EBADMSG,
                                     "manifest: \"url\" must be http or https: %s", m->url);
        if (!json_is_integer(size) || json_integer_value(size) <= 0)
                return reason_reject(reason, -EBADMSG, "manifest: missing or bad \"size\"");
        m->size = (uint64_t) json_integer_value(size);
        if (!json_is_string(sha) || parse_hex32(json_string_value(sha), m->sha256) < 0)
                return reason_reject(reason, -EBADMSG,
                                     "manifest: \"sha256\" must be 64 hex digits");
        for (int i = 0; i < 32; i++)
                (void) snprintf(m->sha256_hex + 2 * i, 3, "%02x", m->sha256[i]);
        if (expires && !json_is_null(expires) &&
            (!json_is_string(expires) || parse_time(json_string_value(expires), &m->expires) < 0))
                return reason_reject(reason, -EBADMSG,
                                     "manifest: \"expires\" is not an RFC 3339 time");
        if (rollout && !json_is_null(rollout)) {
                json_t *pct = json_object_get(rollout, "percent"),
                       *salt = json_object_get(rollout, "salt");
                if (!json_is_object(rollout) || !json_is_integer(pct) ||
                    json_integer_value(pct) < 0 || json_integer_value(pct) > 100)
                        return reason_reject(reason, -EBADMSG,
                                             "manifest: \"rollout.percent\" must be 0 to 100");
                m->has_rollout = true;
                m->percent = (int) json_integer_value(pct);
                m->salt = strdup(json_is_string(salt) ? json_string_value(salt) : "");
                if (!m->salt)
                        return -ENOMEM;
        }
        if (downgrade && !json_is_null(downgrade) && !json_is_boolean(downgrade))
                return reason_reject(reason, -EBADMSG, "manifest: \"downgrade\" must be a boolean");
        m->downgrade = json_is_true(downgrade);
        *ret = TAKE_PTR(m);
        return 0;
}

bool manifest_in_rollout(const Manifest *m, const char *worker_id) {
        if (!m->has_rollout)
                return true;
        if (m->percent >= 100)
                return true;
        uint8_t digest[32];
        unsigned len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return false;
        bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(ctx, m->salt, strlen(m->salt)) == 1 &&
                  EVP_DigestUpdate(ctx, worker_id, strlen(worker_id)) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest, &len) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return false;
        /* The 256-bit big-endian number mod 100, by Horner's rule. */
        unsigned rem = 0;
        for (int i = 0; i < 32; i++)
                rem = (rem * 256 + digest[i]) % 100;
        return (int) rem < m->percent;
}

int manifest_decide(const Manifest *m, const Config *c, const StoreState *st, int active,
                    time_t now, Reason *reason) {
        if (strcmp(m->name, c->compatible) != 0)
                return reason_reject(reason, -EBADMSG, "manifest names package \"%s\", not \"%s\"",
                                     m->name, c->compatible);
        if (m->expires != 0 && m->expires <= now)
                return reason_reject(reason, -EKEYEXPIRED,
                                     "manifest expired (expires %lld, now %lld): possible freeze "
                                     "attack",
                                     (long long) m->expires, (long long) now);
        if (m->size > c->max_package_size)
                return reason_reject(reason, -EFBIG,
                                     "manifest offers %llu bytes, above max_package_size",
                                     (unsigned long long) m->size);

        const char *installed = active >= 0 ? st->slots[active].version : "";
        if (installed[0]) {
                int cmp = semver_compare(m->version, installed);
                if (cmp == 0)
                        return OFFER_UP_TO_DATE;
                if (cmp < 0 && !m->downgrade && !c->allow_downgrade)
                        return reason_reject(reason, -EPERM,
                                             "downgrade from %s to %s refused (not allowed by "
                                             "the manifest or [trust] allow_downgrade)",
                                             installed, m->version);
        }
        if (!manifest_in_rollout(m, c->worker_id))
                return OFFER_NOT_IN_ROLLOUT;
        int other = active == 0 ? 1 : 0;
        if (st->slots[other].state == SLOT_BAD && strcmp(st->slots[other].version, m->version) == 0)
                return OFFER_KNOWN_BAD;
        return OFFER_INSTALL;
}
