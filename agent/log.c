/* log.c: message output of slotd and slotctl (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *log_program = "slotd";
static bool log_journal_prefix;
static LogLevel log_max_level = LOG_LEVEL_INFO;

void log_setup(const char *program, bool journal_prefix) {
        log_program = program;
        log_journal_prefix = journal_prefix;
}

void log_set_max_level(LogLevel level) {
        log_max_level = level;
}

void log_full(LogLevel level, const char *fmt, ...) {
        static const char *const words[] = {
                [LOG_LEVEL_ERROR] = "error: ", [LOG_LEVEL_WARNING] = "warning: ",
                [LOG_LEVEL_NOTICE] = "",       [LOG_LEVEL_INFO] = "",
                [LOG_LEVEL_DEBUG] = "debug: ",
        };
        char msg[2048];
        va_list ap;

        if (level > log_max_level)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        if (log_journal_prefix)
                (void) fprintf(stderr, "<%d>%s\n", (int) level, msg);
        else
                (void) fprintf(stderr, "%s: %s%s\n", log_program, words[level], msg);
}

void log_config_line(bool is_error, const char *line, void *userdata) {
        (void) userdata;
        log_full(is_error ? LOG_LEVEL_ERROR : LOG_LEVEL_WARNING, "%s", line);
}
