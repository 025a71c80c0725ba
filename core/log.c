#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *const level_names[] = {
	[LOG_LVL_OFF] = "off",	 [LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug", [LOG_LVL_TRACE] = "trace",
};

static const int syslog_prio[] = {
	[LOG_LVL_OFF] = LOG_DEBUG, [LOG_LVL_ERROR] = LOG_ERR,	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO, [LOG_LVL_DEBUG] = LOG_DEBUG, [LOG_LVL_TRACE] = LOG_DEBUG,
};

void log_init(struct logger *lg)
{
	*lg = (struct logger){.level = LOG_LVL_INFO, .to_stderr = true, .to_syslog = false};
	snprintf(lg->tag, sizeof(lg->tag), "crosvm");
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_open_syslog(struct logger *lg)
{
	if (lg && lg->to_syslog)
		openlog(lg->tag, LOG_NDELAY | LOG_PID, LOG_USER);
}

bool log_enabled(const struct logger *lg, enum log_level lvl)
{
	enum log_level cur = lg ? lg->level : LOG_LVL_INFO;

	return lvl != LOG_LVL_OFF && lvl <= cur;
}

void log_msg(const struct logger *lg, enum log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int saved = errno;

	if (!log_enabled(lg, lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!lg || lg->to_stderr) {
		/* One write per line so lines from several processes do not interleave. */
		char line[1200];
		int n = snprintf(line, sizeof(line), "[%s %s] %s\n", lg ? lg->tag : "crosvm",
				 level_names[lvl], buf);

		if (n > (int)sizeof(line) - 1)
			n = (int)sizeof(line) - 1;
		if (n > 0 && fwrite(line, 1, (size_t)n, stderr) != (size_t)n)
			(void)0;
	}
	if (lg && lg->to_syslog)
		syslog(syslog_prio[lvl], "%s", buf);
	errno = saved;
}
