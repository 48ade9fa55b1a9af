/*
 * log.c — formats a line and hands it to the program's sink.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

void wx_logf(const struct wx_log *log, enum wx_log_level level, const char *fmt, ...)
{
    if (!log || !log->fn || level > log->level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log->fn(log->ud, level, line);
}

void wx_log_stamp(char *out, size_t outsz, const char *tag, const char *line)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(out, outsz, "ts=%s %s%s", ts, tag, line);
}
