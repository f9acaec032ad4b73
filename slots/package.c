/* package.c: verification of a package file and its slot.ini (package.h). */
#include "package.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "semver.h"

typedef struct MetaParse {
        PackageMeta meta;
        bool has_name, has_version;
        char bad[160];
} MetaParse;

static int meta_handler(void *user, const char *section, const char *key, const char *value) {
        MetaParse *p = user;

        if (strcmp(section, "package") != 0)
                return 1; /* other sections are the package's own business */
        if (strcmp(key, "name") == 0) {
                if (snprintf(p->meta.name, sizeof(p->meta.name), "%s", value) >=
                    (int) sizeof(p->meta.name)) {
                        (void) snprintf(p->bad, sizeof(p->bad), "name is too long");
                        return 0;
                }
                p->has_name = true;
        } else if (strcmp(key, "version") == 0) {
                if (!semver_valid(value)) {
                        (void) snprintf(p->bad, sizeof(p->bad),
                                        "invalid version \"%.100s\" (not SemVer 2.0.0)", value);
                        return 0;
                }
                (void) snprintf(p->meta.version, sizeof(p->meta.version), "%s", value);
                p->has_version = true;
        }
        return 1;
}

int package_meta_parse(const char *ini, size_t len, const char *compatible, PackageMeta *ret,
                       Reason *reason) {
        MetaParse p = {0};

        if (memchr(ini, '\0', len))
                return reason_reject(reason, -EBADMSG, "slot.ini is not text");
        /* inih reads up to a NUL: parse exactly the len bytes given. */
        _cleanup_free_ char *text = strndup(ini, len);
        if (!text)
                return reason_fail(reason, -ENOMEM, "failed to read slot.ini: out of memory");
        int r = ini_parse_string(text, meta_handler, &p);
        if (p.bad[0])
                return reason_reject(reason, -EBADMSG, "slot.ini: %s", p.bad);
        if (r != 0)
                return reason_reject(reason, -EBADMSG, "slot.ini: malformed at line %d", r);
        if (!p.has_name)
                return reason_reject(reason, -EBADMSG, "slot.ini: missing [package] name");
        if (!p.has_version)
                return reason_reject(reason, -EBADMSG, "slot.ini: missing [package] version");
        if (compatible && strcmp(p.meta.name, compatible) != 0)
                return reason_reject(reason, -EBADMSG,
                                     "package name \"%s\" is not compatible with \"%s\"",
                                     p.meta.name, compatible);
        *ret = p.meta;
        return 0;
}

int package_open_verified(const char *path, const char *sig_path, const MinisignKeyring *kr,
                          uint64_t max_size, int *ret_fd, Reason *reason) {
        _cleanup_free_ char *default_sig = NULL;
        _cleanup_(minisign_sig_freep) MinisignSig *sig = NULL;
        const MinisignKey *key;
        struct stat st;
        int r;

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return reason_fail(reason, -errno, "cannot open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return reason_fail(reason, -errno, "cannot stat %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return reason_reject(reason, -EINVAL, "%s is not a regular file", path);
        if ((uint64_t) st.st_size > max_size)
                return reason_reject(
                        reason, -EFBIG, "%s is larger than max_package_size (%llu > %llu bytes)",
                        path, (unsigned long long) st.st_size, (unsigned long long) max_size);

        if (!sig_path) {
                if (asprintf(&default_sig, "%s.minisig", path) < 0)
                        return -ENOMEM;
                sig_path = default_sig;
        }
        r = minisign_sig_load(sig_path, &sig, reason);
        if (r < 0) {
                if (reason)
                        reason->rejected = true; /* no usable signature: the package is refused */
                return r;
        }
        r = minisign_verify_fd(kr, sig, fd, max_size, &key, reason);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return reason_fail(reason, -errno, "cannot seek %s: %s", path, strerror(errno));
        *ret_fd = TAKE_FD(fd);
        return 0;
}
