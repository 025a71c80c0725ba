/*
 * Logging. A struct logger is owned by the VM (or a test) and passed down; there is no
 * global logger. A NULL logger logs at info level to stderr, which keeps leaf modules and
 * unit tests simple.
 */
#ifndef CROSVM_CORE_LOG_H
#define CROSVM_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_OFF = 0,
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_TRACE,
};

struct logger {
	enum log_level level;
	bool to_syslog;
	bool to_stderr;
	char tag[64];
};

/* Defaults: info level, stderr on, syslog off, tag "crosvm". */
void log_init(struct logger *lg);
/* Parses "error|warn|info|debug|trace|off" (crosvm's names); -EINVAL otherwise. */
int log_parse_level(const char *s, enum log_level *out);
/* Opens the syslog connection now so that a sandboxed child keeps using it after pivot_root. */
void log_open_syslog(struct logger *lg);

void log_msg(const struct logger *lg, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool log_enabled(const struct logger *lg, enum log_level lvl);

/*
 * For what a guest can repeat forever (a malformed request, say): counts one more in *count
 * and says whether to log this one, the 1st, 2nd, 4th, 8th..., so logs stay bounded while
 * still showing the count grow.
 */
static inline bool log_ratelimit(uint64_t *count)
{
	++*count;
	return (*count & (*count - 1)) == 0;
}

#define log_err(lg, ...)   log_msg((lg), LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(lg, ...)  log_msg((lg), LOG_LVL_WARN, __VA_ARGS__)
#define log_info(lg, ...)  log_msg((lg), LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_msg((lg), LOG_LVL_DEBUG, __VA_ARGS__)
#define log_trace(lg, ...) log_msg((lg), LOG_LVL_TRACE, __VA_ARGS__)

#endif
