/* archivedl.c: loading libarchive on first use (archivedl.h). */
#define ARCHIVEDL_LOADER
#include "archivedl.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "cleanup.h"
#include "dlload.h"

#define LIBARCHIVE_SONAME "libarchive.so.13"

ArchiveFunctions archive_table;

static int load_result = -ENOPKG;
static char load_error[200];

static void load(void) {
        static const DlSymbol symbols[] = {
#define ARCHIVE_SYMBOL(f) {#f, offsetof(ArchiveFunctions, f)},
                ARCHIVE_FUNCTIONS(ARCHIVE_SYMBOL)
#undef ARCHIVE_SYMBOL
        };
        load_result = dl_load_table(LIBARCHIVE_SONAME, symbols, ELEMENTSOF(symbols),
                                    &archive_table, load_error, sizeof(load_error));
}

int archive_load(Reason *reason) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void) pthread_once(&once, load);
        if (load_result < 0)
                return reason_fail(reason, load_result, "cannot load libarchive: %s", load_error);
        return 0;
}
