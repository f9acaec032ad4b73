/* archivedl.c: loading libarchive on first use (archivedl.h). */
#define ARCHIVEDL_LOADER
#include "archivedl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define LIBARCHIVE_SONAME "libarchive.so.13"

ArchiveFunctions archive_table;

static int load_result = -ENOPKG;
static char load_error[200];

static void load(void) {
        static const struct {
                const char *name;
                size_t offset;
        } symbols[] = {
#define ARCHIVE_SYMBOL(f) {#f, offsetof(ArchiveFunctions, f)},
                ARCHIVE_FUNCTIONS(ARCHIVE_SYMBOL)
#undef ARCHIVE_SYMBOL
        };
        ArchiveFunctions loaded;

        /* Kept open for the life of the process. */
        void *lib = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                const char *e = dlerror();
                (void) snprintf(load_error, sizeof(load_error), "%s", e ? e : LIBARCHIVE_SONAME);
                return;
        }
        for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
                void *addr = dlsym(lib, symbols[i].name);
                if (!addr) {
                        (void) snprintf(load_error, sizeof(load_error), "%s has no %s",
                                        LIBARCHIVE_SONAME, symbols[i].name);
                        return;
                }
                memcpy((char *) &loaded + symbols[i].offset, &addr, sizeof(addr));
        }
        archive_table = loaded;
        load_result = 0;
}

int archive_load(Reason *reason) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&once, load);
        if (load_result < 0)
                return reason_fail(reason, load_result, "cannot load libarchive: %s", load_error);
        return 0;
}
