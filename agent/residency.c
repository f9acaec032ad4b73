/* residency.c: releasing clean library pages and free heap (residency.h).
 *
 * Only segments that can never hold this process's own data are released:
 * PT_LOAD segments mapped without write permission, outside PT_GNU_RELRO
 * (whose pages the loader wrote relocations into). A debugger breakpoint
 * or a uprobe turns a code page into a private copy; /proc/self/pagemap
 * shows such a page as present and not file-backed, and a range holding
 * one is left alone, so no breakpoint is lost. Without pagemap nothing is
 * released. MADV_DONTNEED on a private file mapping without private pages
 * only removes page-table entries: the code stays in the page cache. */
#include "residency.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"

#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_SWAPPED (UINT64_C(1) << 62)
#define PAGEMAP_FILE (UINT64_C(1) << 61)

typedef struct Trim {
        int pagemap;
        uintptr_t page;
        ResidencyReport report;
} Trim;

/* The number of pages of [start, end) mapped in, all page-cache pages; or
 * -1 when one of them is a private copy or swapped out (a private copy),
 * or when pagemap cannot tell. */
static ssize_t present_file_pages(const Trim *t, uintptr_t start, uintptr_t end) {
        uint64_t entries[512];
        ssize_t present = 0;

        for (uintptr_t at = start; at < end;) {
                size_t n = (end - at) / t->page;
                if (n > ELEMENTSOF(entries))
                        n = ELEMENTSOF(entries);
                ssize_t got = pread(t->pagemap, entries, n * sizeof(uint64_t),
                                    (off_t) (at / t->page * sizeof(uint64_t)));
                if (got < (ssize_t) sizeof(uint64_t))
                        return -1;
                size_t have = (size_t) got / sizeof(uint64_t);
                for (size_t i = 0; i < have; i++) {
                        if (entries[i] & PAGEMAP_SWAPPED)
                                return -1;
                        if (!(entries[i] & PAGEMAP_PRESENT))
                                continue;
                        if (!(entries[i] & PAGEMAP_FILE))
                                return -1;
                        present++;
                }
                at += have * t->page;
        }
        return present;
}

static void release(Trim *t, uintptr_t start, uintptr_t end) {
        if (end <= start)
                return;
        ssize_t present = present_file_pages(t, start, end);
        if (present < 0)
                t->report.kept++;
        else if (present > 0 && madvise((void *) start, end - start, MADV_DONTNEED) == 0)
                t->report.ranges++;
}

/* Adjacent read-only segments (headers, code, constants) are released as
 * one range: two system calls per library, not six. */
static int trim_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        Trim *t = userdata;
        uintptr_t relro_start = 0, relro_end = 0, run_start = 0, run_end = 0;
        (void) size;

        /* The vDSO is the kernel's, not a file. */
        if (strncmp(info->dlpi_name, "linux-vdso", 10) == 0)
                return 0;
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type == PT_GNU_RELRO) {
                        relro_start = info->dlpi_addr + ph->p_vaddr;
                        relro_end = relro_start + ph->p_memsz;
                }
        }
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD)
                        continue;
                /* Whole pages inside the segment's file-backed part only. */
                uintptr_t seg = info->dlpi_addr + ph->p_vaddr;
                uintptr_t start = (seg + t->page - 1) & ~(t->page - 1);
                uintptr_t end = (seg + ph->p_filesz) & ~(t->page - 1);
                bool releasable = !(ph->p_flags & PF_W) && end > start &&
                                  !(relro_end > relro_start && start < relro_end &&
                                    relro_start < end);
                if (releasable && start == run_end) {
                        run_end = end;
                        continue;
                }
                release(t, run_start, run_end);
                run_start = run_end = 0;
                if (releasable) {
                        run_start = start;
                        run_end = end;
                }
        }
        release(t, run_start, run_end);
        return 0;
}

void residency_trim(ResidencyReport *ret_report) {
        Trim t = {
                .pagemap = -1,
                .page = (uintptr_t) sysconf(_SC_PAGESIZE),
        };

        (void) malloc_trim(0);
        t.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (t.pagemap >= 0) {
                (void) dl_iterate_phdr(trim_object, &t);
                (void) close(t.pagemap);
        }
        if (ret_report)
                *ret_report = t.report;
}
