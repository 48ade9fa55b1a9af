/*
 * basic_cache.c — the basic access_token (cgi-bin/token), cached and refreshed before it
 * expires by one refresher at a time: a mutex across threads and, with a lock file, flock()
 * across processes, which then also share the token through that file (mode 0600).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/client.h>

struct wx_basic_cache {
    const struct wx_client *client;
    char *lock_file;
    int64_t margin;
    pthread_mutex_t mu;
    char token[WX_MAX_TOKEN + 1];
    int64_t expires;
    uint64_t fetches;
};

int wx_basic_cache_new(const struct wx_client *c, const char *lock_file, int64_t margin,
                       struct wx_basic_cache **out)
{
    struct wx_basic_cache *bc = calloc(1, sizeof *bc);
    if (!bc)
        return WX_ERR_NOMEM;
    if (lock_file && !(bc->lock_file = strdup(lock_file))) {
        free(bc);
        return WX_ERR_NOMEM;
    }
    bc->client = c;
    bc->margin = margin > 0 ? margin : 300;
    pthread_mutex_init(&bc->mu, NULL);
    *out = bc;
    return WX_OK;
}

void wx_basic_cache_free(struct wx_basic_cache *bc)
{
    if (!bc)
        return;
    pthread_mutex_destroy(&bc->mu);
    sodium_memzero(bc->token, sizeof bc->token);
    free(bc->lock_file);
    free(bc);
}

void wx_basic_cache_invalidate(struct wx_basic_cache *bc)
{
    pthread_mutex_lock(&bc->mu);
    bc->expires = 0;
    pthread_mutex_unlock(&bc->mu);
}

uint64_t wx_basic_cache_fetches(struct wx_basic_cache *bc)
{
    pthread_mutex_lock(&bc->mu);
    uint64_t n = bc->fetches;
    pthread_mutex_unlock(&bc->mu);
    return n;
}

/* File format: "<expires> <token>\n". Fills the cache when the file holds a fresh token. */
static void read_shared(struct wx_basic_cache *bc, int fd, int64_t now)
{
    char buf[WX_MAX_TOKEN + 64];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *end = NULL;
    long long exp = strtoll(buf, &end, 10);
    if (!end || *end != ' ' || exp - bc->margin <= now)
        return;
    char *tok = end + 1, *nl = strchr(tok, '\n');
    if (!nl || (size_t)(nl - tok) > WX_MAX_TOKEN || nl == tok)
        return;
    memcpy(bc->token, tok, (size_t)(nl - tok));
    bc->token[nl - tok] = '\0';
    bc->expires = exp;
    sodium_memzero(buf, sizeof buf);
}

static void write_shared(struct wx_basic_cache *bc, int fd)
{
    char buf[WX_MAX_TOKEN + 64];
    int n = snprintf(buf, sizeof buf, "%" PRId64 " %s\n", bc->expires, bc->token);
    if (n > 0 && ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n)
        fsync(fd);
    sodium_memzero(buf, sizeof buf);
}

int wx_basic_cache_get(struct wx_basic_cache *bc, char token[WX_MAX_TOKEN + 1],
                       struct wx_error *err)
{
    int rc = WX_OK, fd = -1;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&bc->mu);
    if (bc->expires - bc->margin > now)
        goto hit;
    if (bc->lock_file) {
        fd = open(bc->lock_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) != 0) {
            if (err) {
                err->errcode = -1;
                snprintf(err->errmsg, sizeof err->errmsg, "lock file %s: %s", bc->lock_file,
                         strerror(errno));
            }
            rc = WX_ERR_IO;
            goto done;
        }
        read_shared(bc, fd, now);
        if (bc->expires - bc->margin > now)
            goto hit;
    }
    int64_t expires_in = 0;
    rc = wx_basic_token(bc->client, bc->token, &expires_in, err);
    bc->fetches++;
    if (rc)
        goto done;
    bc->expires = now + expires_in;
    if (fd >= 0)
        write_shared(bc, fd);
hit:
    memcpy(token, bc->token, strlen(bc->token) + 1);
done:
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
    pthread_mutex_unlock(&bc->mu);
    return rc;
}
