/* semver.h: SemVer 2.0.0 validation and precedence. */
#pragma once

#include <stdbool.h>

/* True when s is a valid SemVer 2.0.0 version (at most 128 bytes). */
bool semver_valid(const char *s);

/* Precedence of two valid versions per SemVer 2.0.0 section 11 (build
 * metadata ignored): <0, 0 or >0. Invalid input sorts below valid input. */
int semver_compare(const char *a, const char *b);
