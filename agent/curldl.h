/* curldl.h: libcurl, loaded when first used. slotctl's local commands
 * (install FILE, switch, status without a version URL, ...) never touch
 * the network, and libcurl with what Debian links into it (GnuTLS,
 * Kerberos, LDAP, SSH, RTMP) holds about 4.5 MB of every process that maps
 * it: loading it on first use keeps a local install within its memory
 * bound. Include this instead of <curl/curl.h>; the curl_* calls keep
 * their names and go through the loaded table. */
#pragma once

#include <curl/curl.h>

typedef struct CurlFunctions {
        CURLcode (*global_init)(long flags); /* called once, by the loader */
        CURL *(*easy_init)(void);
        void (*easy_cleanup)(CURL *h);
        void (*easy_reset)(CURL *h);
        CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
        CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
        CURLcode (*easy_perform)(CURL *h);
        const char *(*easy_strerror)(CURLcode code);
        struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
        void (*slist_free_all)(struct curl_slist *list);
        CURLU *(*url)(void);
        void (*url_cleanup)(CURLU *u);
        CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *content, unsigned flags);
        CURLUcode (*url_get)(const CURLU *u, CURLUPart part, char **ret, unsigned flags);
        void (*free)(void *p);
} CurlFunctions;

/* The table, loaded on first call (thread-safe), with curl_global_init()
 * done. When libcurl cannot be loaded or initialised every entry fails:
 * init calls return NULL or CURLE_FAILED_INIT. */
const CurlFunctions *curl_functions(void);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_init(...) (curl_functions()->easy_init(__VA_ARGS__))
#define curl_easy_cleanup(...) (curl_functions()->easy_cleanup(__VA_ARGS__))
#define curl_easy_reset(...) (curl_functions()->easy_reset(__VA_ARGS__))
#define curl_easy_setopt(...) (curl_functions()->easy_setopt(__VA_ARGS__))
#define curl_easy_getinfo(...) (curl_functions()->easy_getinfo(__VA_ARGS__))
#define curl_easy_perform(...) (curl_functions()->easy_perform(__VA_ARGS__))
#define curl_easy_strerror(...) (curl_functions()->easy_strerror(__VA_ARGS__))
#define curl_slist_append(...) (curl_functions()->slist_append(__VA_ARGS__))
#define curl_slist_free_all(...) (curl_functions()->slist_free_all(__VA_ARGS__))
#define curl_url(...) (curl_functions()->url(__VA_ARGS__))
#define curl_url_cleanup(...) (curl_functions()->url_cleanup(__VA_ARGS__))
#define curl_url_set(...) (curl_functions()->url_set(__VA_ARGS__))
#define curl_url_get(...) (curl_functions()->url_get(__VA_ARGS__))
#define curl_free(...) (curl_functions()->free(__VA_ARGS__))
