/* dlload.h: a library's functions, loaded into a table at first use. */
#pragma once

#include <stddef.h>

typedef struct DlSymbol {
        const char *name;
        size_t offset; /* of its function pointer in the table */
} DlSymbol;

/* dlopens soname (kept open for the life of the process) and looks up
 * every symbol. All or nothing: the table is written only when every
 * symbol is found. Returns 0, or -ENOPKG with the cause in err. */
int dl_load_table(const char *soname, const DlSymbol *symbols, size_t n, void *table, char *err,
                  size_t err_size);
