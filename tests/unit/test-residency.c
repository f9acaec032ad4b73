/* test-residency.c: giving back library pages and free heap, in this very
 * process: what is released comes back on use, and a private copy of a
 * code page (what a debugger's breakpoint is) survives. */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "residency.h"

/* This process's VmRSS in KiB. */
static long rss_kib(void) {
        unsigned long total = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        assert_non_null(f);
        assert_int_equal(fscanf(f, "%lu %lu", &total, &resident), 2);
        (void) fclose(f);
        return (long) (resident * (unsigned long) sysconf(_SC_PAGESIZE) / 1024);
}

/* Runs code spread over libcrypto, so its pages are mapped. */
static void digest(const char *name, const char *text, unsigned char *out, unsigned *len) {
        EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
        assert_non_null(md);
        assert_int_equal(EVP_Digest(text, strlen(text), out, len, md, NULL), 1);
        EVP_MD_free(md);
}

static void test_residency_trim_gives_back_and_code_still_runs(void **state) {
        unsigned char before[EVP_MAX_MD_SIZE], after[EVP_MAX_MD_SIZE];
        unsigned before_len = 0, after_len = 0;
        ResidencyReport rep;
        (void) state;

        digest("SHA512", "slotd", before, &before_len);
        digest("SHA3-256", "slotd", before, &before_len);
        digest("SHA256", "slotd", before, &before_len);
        long rss_before = rss_kib();
        residency_trim(&rep);
        long rss_after = rss_kib();
        assert_true(rep.ranges > 0);
        assert_true(rss_before > 0);
        assert_true(rss_after > 0);
        assert_true(rss_after < rss_before);

        /* The released code is mapped again on use, unchanged. */
        digest("SHA256", "slotd", after, &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, before_len);
}

typedef struct Header {
        const char *name;
        uintptr_t addr; /* the ELF header of the library, in its first segment */
} Header;

static int find_header(struct dl_phdr_info *info, size_t size, void *userdata) {
        Header *h = userdata;
        (void) size;
        if (!strstr(info->dlpi_name, h->name))
                return 0;
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type == PT_LOAD && ph->p_offset == 0 && !(ph->p_flags & PF_W)) {
                        h->addr = info->dlpi_addr + ph->p_vaddr;
                        return 1;
                }
        }
        return 0;
}

static void test_residency_trim_keeps_private_copies(void **state) {
        Header h = {.name = "libcrypto.so"};
        ResidencyReport rep;
        const unsigned char mark = 0x5a;
        (void) state;

        /* A debugger writes a breakpoint through /proc/PID/mem: the kernel
         * gives the process a private copy of that read-only page. Here
         * the copy is of e_ident's padding (byte 15), which nothing reads. */
        assert_int_equal(dl_iterate_phdr(find_header, &h), 1);
        unsigned char *pad = (unsigned char *) h.addr + 15;
        assert_int_equal(*pad, 0);
        int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, &mark, 1, (off_t) (uintptr_t) pad), 1);
        (void) close(fd);
        assert_int_equal(*pad, mark);

        residency_trim(&rep);
        /* Released, the page would be the file's again, without the mark. */
        assert_true(rep.kept >= 1);
        assert_int_equal(*pad, mark);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_residency_trim_gives_back_and_code_still_runs),
                cmocka_unit_test(test_residency_trim_keeps_private_copies),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
