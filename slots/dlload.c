/* dlload.c: loading a library's functions into a table (dlload.h). */
#include "dlload.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

int dl_load_table(const char *soname, const DlSymbol *symbols, size_t n, void *table, char *err,
                  size_t err_size) {
        _cleanup_free_ void **addr = calloc(n, sizeof(void *));
        if (!addr) {
                (void) snprintf(err, err_size, "out of memory");
                return -ENOPKG;
        }
        void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                const char *e = dlerror();
                (void) snprintf(err, err_size, "%s", e ? e : soname);
                return -ENOPKG;
        }
        for (size_t i = 0; i < n; i++) {
                addr[i] = dlsym(lib, symbols[i].name);
                if (!addr[i]) {
                        (void) snprintf(err, err_size, "%s has no %s", soname, symbols[i].name);
                        return -ENOPKG;
                }
        }
        for (size_t i = 0; i < n; i++)
                memcpy((char *) table + symbols[i].offset, &addr[i], sizeof(void *));
        return 0;
}
