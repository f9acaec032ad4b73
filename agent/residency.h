/* residency.h: giving back the memory slotd touched but no longer uses.
 *
 * Starting up maps pages of every shared library that are not needed
 * again: the dynamic loader reads symbol tables and runs constructors,
 * libcrypto initialises every provider, and the kernel maps whole
 * page-cache folios around each page fault. On this kind of kernel that
 * leaves some 10 MB of library code resident in an idle process whose
 * polls touch about 2 MB of it. residency_trim() drops this process's
 * mappings of clean library code (the page cache keeps the pages, and the
 * next use maps them back with a minor fault) and returns free heap to the
 * kernel. slotd calls it when it goes idle after a burst of work: start-up,
 * an update, a reload, a poll that opened a new TLS connection. */
#pragma once

#include <stddef.h>

typedef struct ResidencyReport {
        size_t ranges; /* read-only library ranges released */
        size_t kept;   /* ranges left alone: they hold private copies */
} ResidencyReport;

/* Releases what it can; never fails (whatever cannot be checked is kept).
 * ret_report may be NULL. Safe to call while other threads run. */
void residency_trim(ResidencyReport *ret_report);
