/*
 * log.c — formats a line and hands it to the program's sink.
 */
#include <stdarg.h>
#include <stdio.h>

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
