/* archivedl.h: libarchive, loaded when a package is first read.
 *
 * libarchive brings libxml2, ICU and libstdc++ with it on Debian: about
 * 0.5 MB resident in every process that maps them, for code only an
 * install runs. slotd's event loop never unpacks (updates run in a child
 * process), and most slotctl commands never do, so neither maps it until
 * then. Include this instead of <archive.h>: the archive_* calls the
 * unpacker makes keep their names and go through the loaded table. */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "reason.h"

#define ARCHIVE_FUNCTIONS(X)                     \
        X(archive_entry_copy_hardlink)           \
        X(archive_entry_copy_pathname)           \
        X(archive_entry_copy_symlink)            \
        X(archive_entry_filetype)                \
        X(archive_entry_hardlink)                \
        X(archive_entry_hardlink_utf8)           \
        X(archive_entry_pathname)                \
        X(archive_entry_pathname_utf8)           \
        X(archive_entry_perm)                    \
        X(archive_entry_set_perm)                \
        X(archive_entry_size)                    \
        X(archive_entry_size_is_set)             \
        X(archive_entry_symlink)                 \
        X(archive_entry_symlink_utf8)            \
        X(archive_errno)                         \
        X(archive_error_string)                  \
        X(archive_filter_bytes)                  \
        X(archive_read_data)                     \
        X(archive_read_data_block)               \
        X(archive_read_data_skip)                \
        X(archive_read_free)                     \
        X(archive_read_new)                      \
        X(archive_read_next_header)              \
        X(archive_read_open_fd)                  \
        X(archive_read_support_filter_bzip2)     \
        X(archive_read_support_filter_gzip)      \
        X(archive_read_support_filter_none)      \
        X(archive_read_support_filter_xz)        \
        X(archive_read_support_filter_zstd)      \
        X(archive_read_support_format_gnutar)    \
        X(archive_read_support_format_raw)       \
        X(archive_read_support_format_tar)       \
        X(archive_write_close)                   \
        X(archive_write_data_block)              \
        X(archive_write_disk_new)                \
        X(archive_write_disk_set_options)        \
        X(archive_write_finish_entry)            \
        X(archive_write_free)                    \
        X(archive_write_header)

typedef struct ArchiveFunctions {
#define ARCHIVE_FUNCTION_POINTER(f) __typeof__(f) *f;
        ARCHIVE_FUNCTIONS(ARCHIVE_FUNCTION_POINTER)
#undef ARCHIVE_FUNCTION_POINTER
} ArchiveFunctions;

/* Filled by archive_load(); read only after it succeeded. */
extern ArchiveFunctions archive_table;

/* Loads libarchive once (thread-safe). Returns 0, or -ENOPKG with a
 * reason when it is missing or lacks a function. */
int archive_load(Reason *reason);

/* From here on each archive_* name above means the loaded function
 * (except in the loader itself). */
#ifndef ARCHIVEDL_LOADER
#define archive_entry_copy_hardlink (archive_table.archive_entry_copy_hardlink)
#define archive_entry_copy_pathname (archive_table.archive_entry_copy_pathname)
#define archive_entry_copy_symlink (archive_table.archive_entry_copy_symlink)
#define archive_entry_filetype (archive_table.archive_entry_filetype)
#define archive_entry_hardlink (archive_table.archive_entry_hardlink)
#define archive_entry_hardlink_utf8 (archive_table.archive_entry_hardlink_utf8)
#define archive_entry_pathname (archive_table.archive_entry_pathname)
#define archive_entry_pathname_utf8 (archive_table.archive_entry_pathname_utf8)
#define archive_entry_perm (archive_table.archive_entry_perm)
#define archive_entry_set_perm (archive_table.archive_entry_set_perm)
#define archive_entry_size (archive_table.archive_entry_size)
#define archive_entry_size_is_set (archive_table.archive_entry_size_is_set)
#define archive_entry_symlink (archive_table.archive_entry_symlink)
#define archive_entry_symlink_utf8 (archive_table.archive_entry_symlink_utf8)
#define archive_errno (archive_table.archive_errno)
#define archive_error_string (archive_table.archive_error_string)
#define archive_filter_bytes (archive_table.archive_filter_bytes)
#define archive_read_data (archive_table.archive_read_data)
#define archive_read_data_block (archive_table.archive_read_data_block)
#define archive_read_data_skip (archive_table.archive_read_data_skip)
#define archive_read_free (archive_table.archive_read_free)
#define archive_read_new (archive_table.archive_read_new)
#define archive_read_next_header (archive_table.archive_read_next_header)
#define archive_read_open_fd (archive_table.archive_read_open_fd)
#define archive_read_support_filter_bzip2 (archive_table.archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip (archive_table.archive_read_support_filter_gzip)
#define archive_read_support_filter_none (archive_table.archive_read_support_filter_none)
#define archive_read_support_filter_xz (archive_table.archive_read_support_filter_xz)
#define archive_read_support_filter_zstd (archive_table.archive_read_support_filter_zstd)
#define archive_read_support_format_gnutar (archive_table.archive_read_support_format_gnutar)
#define archive_read_support_format_raw (archive_table.archive_read_support_format_raw)
#define archive_read_support_format_tar (archive_table.archive_read_support_format_tar)
#define archive_write_close (archive_table.archive_write_close)
#define archive_write_data_block (archive_table.archive_write_data_block)
#define archive_write_disk_new (archive_table.archive_write_disk_new)
#define archive_write_disk_set_options (archive_table.archive_write_disk_set_options)
#define archive_write_finish_entry (archive_table.archive_write_finish_entry)
#define archive_write_free (archive_table.archive_write_free)
#define archive_write_header (archive_table.archive_write_header)
#endif
