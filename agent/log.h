/* log.h: the programs' messages. slotctl writes "slotctl: error: ..." lines
 * to stderr; slotd writes to stderr with sd-daemon level prefixes, which the
 * journal turns into priorities. */
#pragma once

#include <stdbool.h>

typedef enum LogLevel {
        LOG_LEVEL_ERROR = 3,
        LOG_LEVEL_WARNING = 4,
        LOG_LEVEL_NOTICE = 5,
        LOG_LEVEL_INFO = 6,
        LOG_LEVEL_DEBUG = 7,
} LogLevel;

/* Sets the program name and whether to prefix lines for the journal. */
void log_setup(const char *program, bool journal_prefix);
void log_set_max_level(LogLevel level);

void log_full(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* A config_log_fn (config.h): warnings and errors of the config file. */
void log_config_line(bool is_error, const char *line, void *userdata);
