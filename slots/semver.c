/* semver.c: SemVer 2.0.0 parsing and precedence, used to tell upgrades
 * from downgrades. */
#include "semver.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SEMVER_MAX 128

/* A numeric identifier: digits, no leading zero unless it is "0". */
static bool numeric_ok(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        return false;
        return n == 1 || s[0] != '0';
}

static bool ident_chars_ok(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool all_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        return false;
        return n > 0;
}

/* Checks a dot-separated identifier list; prerelease numeric parts may not
 * have leading zeros, build parts may. */
static bool idents_ok(const char *s, size_t n, bool prerelease) {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i < n && s[i] != '.')
                        continue;
                size_t len = i - start;
                if (!ident_chars_ok(s + start, len))
                        return false;
                if (prerelease && all_digits(s + start, len) && !numeric_ok(s + start, len))
                        return false;
                start = i + 1;
        }
        return true;
}

typedef struct SemVerParts {
        const char *core[3];
        size_t core_len[3];
        const char *pre; /* NULL when absent */
        size_t pre_len;
} SemVerParts;

static bool semver_split(const char *s, SemVerParts *p) {
        size_t n = strnlen(s, SEMVER_MAX + 1);
        if (n == 0 || n > SEMVER_MAX)
                return false;

        const char *plus = memchr(s, '+', n);
        size_t main_len = plus ? (size_t) (plus - s) : n;
        if (plus && !idents_ok(plus + 1, n - main_len - 1, false))
                return false;

        const char *dash = memchr(s, '-', main_len);
        size_t core_len = dash ? (size_t) (dash - s) : main_len;
        p->pre = NULL;
        p->pre_len = 0;
        if (dash) {
                p->pre = dash + 1;
                p->pre_len = main_len - core_len - 1;
                if (!idents_ok(p->pre, p->pre_len, true))
                        return false;
        }

        size_t start = 0;
        int field = 0;
        for (size_t i = 0; i <= core_len; i++) {
                if (i < core_len && s[i] != '.')
                        continue;
                if (field >= 3 || !numeric_ok(s + start, i - start))
                        return false;
                p->core[field] = s + start;
                p->core_len[field] = i - start;
                field++;
                start = i + 1;
        }
        return field == 3;
}

bool semver_valid(const char *s) {
        SemVerParts p;
        return s && semver_split(s, &p);
}

/* Compares two digit strings without leading zeros, of any length. */
static int numcmp(const char *a, size_t an, const char *b, size_t bn) {
        if (an != bn)
                return an < bn ? -1 : 1;
        int c = memcmp(a, b, an);
        return c < 0 ? -1 : c > 0;
}

static int precmp(const char *a, size_t an, const char *b, size_t bn) {
        size_t ai = 0, bi = 0;
        for (;;) {
                if (ai >= an && bi >= bn)
                        return 0;
                if (ai >= an)
                        return -1;
                if (bi >= bn)
                        return 1;
                size_t ae = ai, be = bi;
                while (ae < an && a[ae] != '.')
                        ae++;
                while (be < bn && b[be] != '.')
                        be++;
                bool anum = all_digits(a + ai, ae - ai), bnum = all_digits(b + bi, be - bi);
                int c;
                if (anum && bnum)
                        c = numcmp(a + ai, ae - ai, b + bi, be - bi);
                else if (anum != bnum)
                        c = anum ? -1 : 1; /* numeric identifiers sort first */
                else {
                        size_t l = ae - ai < be - bi ? ae - ai : be - bi;
                        c = memcmp(a + ai, b + bi, l);
                        if (c == 0 && ae - ai != be - bi)
                                c = ae - ai < be - bi ? -1 : 1;
                }
                if (c != 0)
                        return c < 0 ? -1 : 1;
                ai = ae + 1;
                bi = be + 1;
        }
}

int semver_compare(const char *a, const char *b) {
        SemVerParts pa, pb;
        bool va = a && semver_split(a, &pa), vb = b && semver_split(b, &pb);
        if (!va || !vb)
                return va - vb;

        for (int i = 0; i < 3; i++) {
                int c = numcmp(pa.core[i], pa.core_len[i], pb.core[i], pb.core_len[i]);
                if (c != 0)
                        return c;
        }
        if (!pa.pre && !pb.pre)
                return 0;
        if (!pa.pre)
                return 1; /* a release outranks its pre-releases */
        if (!pb.pre)
                return -1;
        return precmp(pa.pre, pa.pre_len, pb.pre, pb.pre_len);
}
