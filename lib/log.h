/*
 * log.h — the log sink a program hands to the library. The library never prints: it formats
 * one line and gives it to the sink (or drops it when there is none).
 */
#ifndef WX_LOG_H
#define WX_LOG_H

#include <stddef.h>

enum wx_log_level { WX_LOG_ERROR, WX_LOG_WARN, WX_LOG_INFO, WX_LOG_DEBUG };

struct wx_log {
    void (*fn)(void *ud, enum wx_log_level level, const char *line);
    void *ud;
    enum wx_log_level level;
};

/* Formats "ts=<UTC time> <tag><line>" into out, for a program's sink to write. */
void wx_log_stamp(char *out, size_t outsz, const char *tag, const char *line);

void wx_logf(const struct wx_log *log, enum wx_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
