/* curldl.c: loading libcurl on first use (curldl.h). */
#include "curldl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include "cleanup.h"
#include "dlload.h"

#define LIBCURL_SONAME "libcurl.so.4"

/* What every entry does when libcurl is missing: fail, never crash. */
static CURL *no_easy_init(void) {
        return NULL;
}
static void no_easy_handle(CURL *h) {
        (void) h;
}
static CURLcode no_easy_setopt(CURL *h, CURLoption option, ...) {
        (void) h;
        (void) option;
        return CURLE_FAILED_INIT;
}
static CURLcode no_easy_getinfo(CURL *h, CURLINFO info, ...) {
        (void) h;
        (void) info;
        return CURLE_FAILED_INIT;
}
static CURLcode no_easy_perform(CURL *h) {
        (void) h;
        return CURLE_FAILED_INIT;
}
static const char *no_easy_strerror(CURLcode code) {
        (void) code;
        return "libcurl (" LIBCURL_SONAME ") could not be loaded";
}
static struct curl_slist *no_slist_append(struct curl_slist *list, const char *s) {
        (void) list;
        (void) s;
        return NULL;
}
static void no_slist_free_all(struct curl_slist *list) {
        (void) list;
}
static CURLU *no_url(void) {
        return NULL;
}
static void no_url_cleanup(CURLU *u) {
        (void) u;
}
static CURLUcode no_url_set(CURLU *u, CURLUPart part, const char *content, unsigned flags) {
        (void) u;
        (void) part;
        (void) content;
        (void) flags;
        return CURLUE_OUT_OF_MEMORY;
}
static CURLUcode no_url_get(const CURLU *u, CURLUPart part, char **ret, unsigned flags) {
        (void) u;
        (void) part;
        (void) ret;
        (void) flags;
        return CURLUE_OUT_OF_MEMORY;
}
static void no_free(void *p) {
        (void) p;
}

static CurlFunctions table = {
        .easy_init = no_easy_init,
        .easy_cleanup = no_easy_handle,
        .easy_reset = no_easy_handle,
        .easy_setopt = no_easy_setopt,
        .easy_getinfo = no_easy_getinfo,
        .easy_perform = no_easy_perform,
        .easy_strerror = no_easy_strerror,
        .slist_append = no_slist_append,
        .slist_free_all = no_slist_free_all,
        .url = no_url,
        .url_cleanup = no_url_cleanup,
        .url_set = no_url_set,
        .url_get = no_url_get,
        .free = no_free,
};

static void load(void) {
        static const DlSymbol symbols[] = {
                {"curl_global_init", offsetof(CurlFunctions, global_init)},
                {"curl_easy_init", offsetof(CurlFunctions, easy_init)},
                {"curl_easy_cleanup", offsetof(CurlFunctions, easy_cleanup)},
                {"curl_easy_reset", offsetof(CurlFunctions, easy_reset)},
                {"curl_easy_setopt", offsetof(CurlFunctions, easy_setopt)},
                {"curl_easy_getinfo", offsetof(CurlFunctions, easy_getinfo)},
                {"curl_easy_perform", offsetof(CurlFunctions, easy_perform)},
                {"curl_easy_strerror", offsetof(CurlFunctions, easy_strerror)},
                {"curl_slist_append", offsetof(CurlFunctions, slist_append)},
                {"curl_slist_free_all", offsetof(CurlFunctions, slist_free_all)},
                {"curl_url", offsetof(CurlFunctions, url)},
                {"curl_url_cleanup", offsetof(CurlFunctions, url_cleanup)},
                {"curl_url_set", offsetof(CurlFunctions, url_set)},
                {"curl_url_get", offsetof(CurlFunctions, url_get)},
                {"curl_free", offsetof(CurlFunctions, free)},
        };
        CurlFunctions loaded;
        char err[200];

        if (dl_load_table(LIBCURL_SONAME, symbols, ELEMENTSOF(symbols), &loaded, err,
                          sizeof(err)) < 0)
                return; /* the failing table stays */
        /* Initialised here, once, before any caller sees the table: every
         * user of libcurl in slotd goes through it. */
        if (loaded.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return;
        table = loaded;
}

const CurlFunctions *curl_functions(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&once, load);
        return &table;
}
