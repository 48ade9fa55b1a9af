/*
 * http.c — libmicrohttpd glue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "fiber.h"
#include "http.h"
#include "metrics.h"

/*
 * PH_RUN: the handler is running (on a fiber: maybe parked and continued several times).
 * PH_PARKED: its fiber waits on the store, the connection suspended. PH_WAIT: the handler handed
 * the response to another thread (wx_http_suspend), which sets PH_READY with wx_http_resume.
 */
enum { PH_NEW, PH_BODY, PH_RUN, PH_PARKED, PH_WAIT, PH_READY, PH_SENT };

#define WX_HTTP_DRAIN_MS 10000 /* at stop, the longest wait for parked handlers to finish */

/*
 * Lingering close (nginx's lingering_close): a connection closed with request bytes still unread
 * (a 414 or 413 answered before the client finished sending) is not closed at once, because
 * close(2) with unread input sends an RST, and a client that receives the RST while still writing
 * loses the answer it has not read yet. Its descriptor is kept (a dup taken when MHD lets it go),
 * its input read and dropped until the client closes, or WX_HTTP_LINGER_MS pass, or
 * WX_HTTP_LINGER_BYTES are dropped; at most WX_HTTP_LINGER_MAX at once (beyond: closed at once).
 */
#define WX_HTTP_LINGER_MS    5000
#define WX_HTTP_LINGER_BYTES (4u * 1024 * 1024)
#define WX_HTTP_LINGER_MAX   256

struct linger_conn {
    int fd;
    size_t dropped;
    int64_t until_ms;
};

/*
 * The server runs its own event loop around MHD's external epoll mode instead of MHD's internal
 * thread (handlers never block: blocking work goes to a writer or a worker pool and resumes). The
 * difference is the wake-up on resume: MHD's internal thread is woken by a write to its eventfd on
 * every MHD_resume_connection(), which for the provider's group commit meant one syscall and one
 * context switch per request. Here a resume only sets MHD's flags; the loop is woken through
 * wake_fd, once per batch when the resuming thread holds its wake-ups (wx_http_hold_wakeups), at
 * most once while one is pending.
 */
struct wx_http_server {
    struct MHD_Daemon *d;
    struct wx_http_config cfg;
    int port;
    int wake_fd; /* eventfd in MHD's epoll set (edge-triggered, data.ptr NULL: MHD skips it) */
    pthread_t loop;
    atomic_int stopping;
    atomic_int wake_pending; /* a wake-up was sent and the loop has not yet rescanned resumes */
    int fibers;              /* handlers on fibers not yet finished (the loop thread's own) */
    int rescan;              /* the loop thread resumed a connection itself: do not wait */
    pthread_mutex_t omu;
    struct wx_http_req *orphans;   /* (omu) woken fibers whose connection is gone: to continue */
    struct wx_loop_src linger_src; /* the loop thread's: lingering closes */
    struct linger_conn linger[WX_HTTP_LINGER_MAX];
    int nlinger;
};

/*
 * A parked handler's request whose connection MHD gave up (the client closed it, or a stop)
 * is an orphan: its fiber is still run to its end, on the loop thread, its response dropped,
 * so that what it holds is let go (an app read others wait for, its stack, its program data).
 * fstate tells which of "woken" and "orphaned" came second: that side hands it to the loop.
 */
#define WX_HTTP_WOKEN  1
#define WX_HTTP_ORPHAN 2

static _Thread_local struct wx_http_server *held_srv;
static _Thread_local struct wx_http_server *loop_srv; /* the server whose loop this thread runs */
static _Thread_local int held_wake;

static void wake_loop(struct wx_http_server *s)
{
    if (atomic_exchange(&s->wake_pending, 1))
        return; /* a wake-up is already on its way */
    uint64_t one = 1;
    ssize_t n = write(s->wake_fd, &one, sizeof one);
    (void)n; /* only fails when the counter is full, and then the loop is awake anyway */
}

/*
 * MHD_run_wait() waits in epoll, then moves resumed connections back to work and runs what is
 * ready (the handlers and fibers continued there). Clearing wake_pending after it means that
 * any resume whose wake-up was skipped (because one was pending) is picked up by the next call.
 */
static void loop_once(struct wx_http_server *s, int32_t wait_ms)
{
    MHD_run_wait(s->d, wait_ms);
    if (atomic_exchange(&s->wake_pending, 0)) {
        uint64_t v;
        ssize_t n = read(s->wake_fd, &v, sizeof v); /* keeps the counter small */
        (void)n;
    }
}

/*
 * The fibers' sources (fiber.h) after each pass: what they queued during it is written now,
 * before the loop waits again. Their wakes on this thread resume connections without the
 * eventfd (the next pass does not wait). The wait until the next pass, in ms (-1: none).
 */
static int32_t run_sources(struct wx_http_server *s)
{
    int64_t due = -1;
    held_srv = s;
    held_wake = 0;
    int woke = wx_loop_pass(&due);
    held_srv = NULL;
    int rescan = s->rescan;
    s->rescan = 0;
    if (woke || held_wake || rescan)
        return 0;
    if (due < 0)
        return -1;
    int64_t left = due - wx_mono_ns() / 1000000;
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int32_t)left;
}

static int loop_watch(void *ud, int fd, int out)
{
    struct wx_http_server *s = ud;
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = NULL};
    if (!ei)
        return -1;
    if (epoll_ctl(ei->epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    return epoll_ctl(ei->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -1;
}

static void loop_unwatch(void *ud, int fd)
{
    struct wx_http_server *s = ud;
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (ei)
        epoll_ctl(ei->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

static void free_req(struct wx_http_req *req);

/* Continues the woken orphans (loop thread, outside MHD); those that end are freed. */
static void run_orphans(struct wx_http_server *s)
{
    pthread_mutex_lock(&s->omu);
    struct wx_http_req *req = s->orphans;
    s->orphans = NULL;
    pthread_mutex_unlock(&s->omu);
    while (req) {
        struct wx_http_req *next = req->onext;
        if (wx_fiber_continue(req->fiber) == 1) { /* ended (else: parked again, an orphan) */
            s->fibers--;
            req->fiber = NULL;
            if (s->cfg.on_done)
                s->cfg.on_done(req, s->cfg.ud);
            free_req(req);
        }
        req = next;
    }
}

/* Drops what each lingering connection sent; closes those done, past their time or budget. */
static int linger_pass(struct wx_loop_src *src, int64_t *due)
{
    struct wx_http_server *s =
        (struct wx_http_server *)((char *)src - offsetof(struct wx_http_server, linger_src));
    int64_t now = wx_mono_ns() / 1000000;
    char buf[16384];
    for (int i = 0; i < s->nlinger;) {
        struct linger_conn *l = &s->linger[i];
        int done = now >= l->until_ms;
        for (int reads = 0; !done && reads < 16; reads++) {
            ssize_t n = recv(l->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                l->dropped += (size_t)n;
                done = l->dropped >= WX_HTTP_LINGER_BYTES;
                continue;
            }
            done = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
            break;
        }
        if (done) {
            wx_loop_unwatch(l->fd);
            close(l->fd);
            *l = s->linger[--s->nlinger];
            continue;
        }
        if (*due < 0 || l->until_ms < *due)
            *due = l->until_ms;
        i++;
    }
    return 0;
}

static void linger_close(struct wx_loop_src *src)
{
    struct wx_http_server *s =
        (struct wx_http_server *)((char *)src - offsetof(struct wx_http_server, linger_src));
    while (s->nlinger > 0) {
        int fd = s->linger[--s->nlinger].fd;
        wx_loop_unwatch(fd);
        close(fd);
    }
}

/*
 * MHD is about to close a connection (MHD's cleanup: it has left MHD's epoll set, and MHD has
 * shut its sending side, so the client has the whole answer and its end). With input unread, a
 * dup of the descriptor lingers on the loop thread; MHD's close then sends no RST.
 */
static void conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    struct wx_http_server *s = cls;
    (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_CLOSED || loop_srv != s || atomic_load(&s->stopping) ||
        s->nlinger >= WX_HTTP_LINGER_MAX)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int unread = 0;
    if (!ci || ioctl(ci->connect_fd, FIONREAD, &unread) != 0 || unread <= 0)
        return;
    int fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    shutdown(fd, SHUT_WR);
    if (wx_loop_watch(fd, 0) != 0) {
        close(fd);
        return;
    }
    s->linger[s->nlinger++] =
        (struct linger_conn){fd, 0, wx_mono_ns() / 1000000 + WX_HTTP_LINGER_MS};
    s->rescan = 1; /* its input is read in this pass's sources */
}

static void *loop_main(void *arg)
{
    struct wx_http_server *s = arg;
    /* A source's write(2) to a connection its peer closed must not raise SIGPIPE (MHD's own
     * sends use MSG_NOSIGNAL); the error comes back from the write instead. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct wx_loop_ops ops = {loop_watch, loop_unwatch, s};
    loop_srv = s;
    wx_loop_begin(&ops);
    s->linger_src = (struct wx_loop_src){.pass = linger_pass, .close = linger_close};
    wx_loop_add(&s->linger_src);
    int32_t wait = -1;
    while (!atomic_load(&s->stopping)) {
        loop_once(s, wait);
        run_orphans(s);
        wait = run_sources(s);
    }
    /* Handlers parked on the store finish (each bounded by the store's timeout) before MHD's
     * stop frees their requests. */
    int64_t until = wx_mono_ns() + (int64_t)WX_HTTP_DRAIN_MS * 1000000;
    while (s->fibers > 0 && wx_mono_ns() < until) {
        loop_once(s, wait < 0 || wait > 20 ? 20 : wait);
        run_orphans(s);
        wait = run_sources(s);
    }
    wx_loop_end();
    wx_fiber_pool_drain();
    return NULL;
}

void wx_http_hold_wakeups(struct wx_http_server *s)
{
    held_srv = s;
    held_wake = 0;
}

void wx_http_release_wakeups(struct wx_http_server *s)
{
    held_srv = NULL;
    if (held_wake)
        wake_loop(s);
    held_wake = 0;
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct wx_http_server *srv = cls;
    struct wx_http_req *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->server = srv;
    req->conn = conn;
    req->start_ns = wx_mono_ns();
    req->target = strdup(uri ? uri : "/");
    wx_buf_init(&req->body, WX_MAX_BODY);
    wx_buf_init(&req->out, WX_HTTP_MAX_RESPONSE);
    if (!req->target) {
        free(req);
        return NULL;
    }
    char *q = strchr(req->target, '?');
    req->path = (struct wx_slice){req->target, q ? (size_t)(q - req->target) : strlen(req->target)};
    req->query = q ? wx_slice_cstr(q + 1) : (struct wx_slice){"", 0};
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, req->peer,
                  sizeof req->peer);
    return req;
}

static void free_req(struct wx_http_req *req)
{
    for (int i = 0; i < req->nheaders; i++)
        if (req->howned[i])
            free(req->hvalue[i]);
    wx_buf_free(&req->body);
    wx_buf_free(&req->out);
    sodium_memzero(req->target, strlen(req->target)); /* the query may hold a secret or a code */
    free(req->target);
    free(req);
}

static int orphaned(struct wx_http_req *req)
{
    return (atomic_load(&req->fstate) & WX_HTTP_ORPHAN) != 0;
}

const char *wx_http_header(struct wx_http_req *req, const char *name)
{
    return orphaned(req) ? NULL : MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *wx_http_cookie(struct wx_http_req *req, const char *name)
{
    return orphaned(req) ? NULL : MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

int wx_http_set_header(struct wx_http_req *req, const char *name, const char *value)
{
    int at = req->nheaders;
    for (int i = 0; strcasecmp(name, "Set-Cookie") && i < req->nheaders; i++)
        if (!strcasecmp(req->hname[i], name))
            at = i; /* replaced (Cache-Control on a cacheable JSON answer) */
    if (at == WX_HTTP_MAX_HEADERS)
        return WX_ERR_LIMIT;
    char *v = strdup(value);
    if (!v)
        return WX_ERR_NOMEM;
    if (at < req->nheaders && req->howned[at])
        free(req->hvalue[at]);
    if (at == req->nheaders)
        req->nheaders++;
    req->hname[at] = name;
    req->hvalue[at] = v;
    req->howned[at] = 1;
    return WX_OK;
}

/* A header whose value is a string literal (not copied, not freed). */
static void set_static(struct wx_http_req *req, const char *name, const char *value)
{
    if (req->nheaders == WX_HTTP_MAX_HEADERS)
        return;
    req->hname[req->nheaders] = name;
    req->hvalue[req->nheaders] = (char *)value;
    req->howned[req->nheaders++] = 0;
}

void wx_http_json(struct wx_http_req *req, int status)
{
    req->status = status;
    req->content_type = "application/json; charset=utf-8";
    set_static(req, "Cache-Control", "no-store");
    set_static(req, "Pragma", "no-cache");
}

static void page_headers(struct wx_http_req *req)
{
    set_static(req, "X-Frame-Options", "DENY");
    set_static(req, "Content-Security-Policy",
               "default-src 'none'; style-src 'self'; img-src 'self' data:; "
               "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'");
    set_static(req, "Referrer-Policy", "no-referrer");
    set_static(req, "Cache-Control", "no-store");
    set_static(req, "X-Content-Type-Options", "nosniff");
}

void wx_http_page(struct wx_http_req *req, int status)
{
    req->status = status;
    req->content_type = "text/html; charset=utf-8";
    page_headers(req);
}

int wx_http_redirect(struct wx_http_req *req, int status, const char *location)
{
    req->status = status;
    req->content_type = NULL;
    wx_buf_reset(&req->out);
    set_static(req, "Referrer-Policy", "no-referrer");
    set_static(req, "Cache-Control", "no-store");
    return wx_http_set_header(req, "Location", location);
}

void wx_http_text(struct wx_http_req *req, int status, const char *text)
{
    req->status = status;
    req->content_type = "text/plain; charset=utf-8";
    wx_buf_reset(&req->out);
    wx_buf_puts(&req->out, text);
}

void wx_http_record(struct wx_http_req *req, const struct wx_log *log, struct wx_metrics *m)
{
    int64_t ns = wx_mono_ns() - req->start_ns;
    wx_metrics_observe(m, req->route, req->status, req->errcode, (double)ns / 1e9);
    if (!log || log->level < WX_LOG_INFO)
        return;
    char path[160];
    size_t n = req->path.len < sizeof path - 1 ? req->path.len : sizeof path - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)req->path.ptr[i];
        path[i] = (c <= 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
    }
    path[n] = '\0';
    wx_logf(log, WX_LOG_INFO,
            "level=info method=%s path=\"%s\" status=%d errcode=%d latency_us=%lld peer=%s",
            req->method ? req->method : "-", path, req->status, req->errcode,
            (long long)(ns / 1000), req->peer[0] ? req->peer : "-");
}

void wx_http_suspend(struct wx_http_req *req)
{
    req->phase = PH_WAIT;
    req->suspended = 1;
    MHD_suspend_connection(req->conn);
}

/* The suspended connection goes back to MHD, whose loop is woken (once per held batch). */
/* The loop is to look again: at once on its own thread, else through wake_fd. */
static void nudge(struct wx_http_server *s)
{
    if (held_srv == s)
        held_wake = 1;
    else if (loop_srv == s)
        s->rescan = 1; /* inside MHD_run_wait (one fiber woke another): the eventfd would be
                        * read, and the wake lost, before the loop next waits */
    else
        wake_loop(s);
}

/*
 * req is not to be touched once MHD has it back: on one core the loop thread, woken by the
 * resume, can preempt this one, send the answer, find the client gone and free req before the
 * next line here runs (the bench's wx-writer died so, reading req->server from freed memory).
 */
static void resume_conn(struct wx_http_req *req)
{
    struct wx_http_server *s = req->server;
    MHD_resume_connection(req->conn);
    nudge(s);
}

/* A woken orphan (any thread): the loop continues it (run_orphans). */
static void orphan_ready(struct wx_http_req *req)
{
    struct wx_http_server *s = req->server;
    pthread_mutex_lock(&s->omu);
    req->onext = s->orphans;
    s->orphans = req;
    pthread_mutex_unlock(&s->omu);
    nudge(s);
}

void wx_http_resume(struct wx_http_req *req)
{
    if (req->phase != PH_WAIT)
        return; /* never suspended: the response was completed on the handler's own fiber */
    req->phase = PH_READY;
    resume_conn(req);
}

/* MHD's free callback for a response body: bodies carry tokens and codes, so they are wiped
 * (malloc_usable_size: MHD hands back only the pointer, and the whole block is ours). */
static void wipe_free(void *body)
{
    sodium_memzero(body, malloc_usable_size(body));
    free(body);
}

static enum MHD_Result send_response(struct wx_http_req *req)
{
    size_t len = req->out.len;
    char *body = wx_buf_steal(&req->out);
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer_with_free_callback_cls(len, body, wipe_free, body)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (req->content_type)
        MHD_add_response_header(r, "Content-Type", req->content_type);
    for (int i = 0; i < req->nheaders; i++)
        MHD_add_response_header(r, req->hname[i], req->hvalue[i]);
    if (req->close)
        MHD_add_response_header(r, "Connection", "close");
    req->phase = PH_SENT;
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- handlers on fibers (fiber.h): a store call parks the request instead of the loop ---- */

static void fiber_main(void *arg)
{
    struct wx_http_req *req = arg;
    req->server->cfg.handler(req, req->server->cfg.ud);
}

/* On the loop thread, inside the access handler: before the store can answer. */
static void fiber_park(void *ud)
{
    struct wx_http_req *req = ud;
    req->phase = PH_PARKED;
    /* ORPHAN is set on this thread only (completed_cb), so it cannot appear meanwhile */
    if (atomic_fetch_and(&req->fstate, ~WX_HTTP_WOKEN) & WX_HTTP_ORPHAN)
        return; /* parking again after its connection went: nothing of MHD's to suspend */
    MHD_suspend_connection(req->conn);
}

/* Any thread: the store answered; MHD calls the access handler again, which continues it. */
static void fiber_wake(void *ud)
{
    struct wx_http_req *req = ud;
    if (atomic_fetch_or(&req->fstate, WX_HTTP_WOKEN) & WX_HTTP_ORPHAN)
        orphan_ready(req);
    else
        resume_conn(req);
}

/*
 * After the handler returned (finished) or its fiber parked. A handler that handed its
 * response to another thread (wx_http_suspend) waits for MHD's call after the resume, even if
 * that thread already set PH_READY: the response is sent from that call, never twice.
 */
static enum MHD_Result after_handler(struct wx_http_req *req, int finished)
{
    if (!finished)
        return MHD_YES; /* parked: the connection is suspended */
    req->fiber = NULL;
    if (req->suspended) {
        req->suspended = 0;
        return MHD_YES;
    }
    return send_response(req);
}

/* RFC 9112 §6.3: a message with both framings is an attack vector; refuse and close. */
static int bad_framing(struct wx_http_req *req)
{
    return wx_http_header(req, "Transfer-Encoding") && wx_http_header(req, "Content-Length");
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    struct wx_http_server *srv = cls;
    struct wx_http_req *req = *con_cls;
    if (!req)
        return MHD_NO;
    if (req->phase == PH_NEW) {
        /* a copy: an orphan's handler and on_done run after MHD freed the connection */
        snprintf(req->mbuf, sizeof req->mbuf, "%s", method);
        req->method = req->mbuf;
        req->phase = PH_BODY;
        if (bad_framing(req)) {
            req->close = 1;
            wx_http_text(req, 400, "Bad Request: both Content-Length and Transfer-Encoding\n");
            return send_response(req);
        }
        return MHD_YES;
    }
    if (req->phase == PH_BODY && *upload_size) {
        if (!req->body_too_big && wx_buf_append(&req->body, upload_data, *upload_size))
            req->body_too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->phase == PH_BODY) {
        if (req->body_too_big) {
            req->close = 1;
            wx_http_text(req, 413, "Payload Too Large\n");
            return send_response(req);
        }
        req->phase = PH_RUN;
        if (srv->cfg.fibers) {
            struct wx_fiber_hooks h = {fiber_park, fiber_wake, req};
            int r = wx_fiber_start(&req->fiber, fiber_main, req, &h);
            if (r >= 0) {
                srv->fibers += r == 0;
                return after_handler(req, r);
            }
        }
        srv->cfg.handler(req, srv->cfg.ud);
        return after_handler(req, 1);
    }
    if (req->phase == PH_PARKED) { /* woken: the fiber goes on */
        req->phase = PH_RUN;
        int r = wx_fiber_continue(req->fiber);
        srv->fibers -= r == 1;
        return after_handler(req, r);
    }
    if (req->phase == PH_READY)
        return send_response(req);
    return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct wx_http_server *srv = cls;
    struct wx_http_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (req->fiber) { /* parked, or woken and not yet continued: the loop finishes it */
        if (atomic_fetch_or(&req->fstate, WX_HTTP_ORPHAN) & WX_HTTP_WOKEN)
            orphan_ready(req);
        return;
    }
    if (srv->cfg.on_done)
        srv->cfg.on_done(req, srv->cfg.ud);
    free_req(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct wx_http_server *srv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    wx_logf(srv->cfg.log, WX_LOG_DEBUG, "level=debug msg=\"http: %s\"", line);
}

static int start_loop(struct wx_http_server *srv)
{
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!ei)
        return -1;
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(ei->epoll_fd, EPOLL_CTL_ADD, srv->wake_fd, &ev) != 0)
        return -1;
    if (pthread_create(&srv->loop, NULL, loop_main, srv) != 0)
        return -1;
    pthread_setname_np(srv->loop, "wx-http");
    return 0;
}

int wx_http_start(struct wx_http_server **out, const struct wx_http_config *cfg, char *err,
                  size_t errsz)
{
    struct wx_http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return WX_ERR_NOMEM;
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->omu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host ? cfg->host : "127.0.0.1", &sa.sin_addr) != 1) {
        snprintf(err, errsz, "listen address '%s' is not a numeric IPv4 address", cfg->host);
        free(srv);
        return WX_ERR_INVALID;
    }
    srv->wake_fd = -1;
    srv->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, access_cb, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, uri_log, srv,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv, MHD_OPTION_NOTIFY_CONNECTION, conn_notify,
        srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(WX_MAX_URL + WX_MAX_HEADER + 4096), MHD_OPTION_CONNECTION_LIMIT,
        cfg->conn_limit ? cfg->conn_limit : 4096u, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->timeout_s ? cfg->timeout_s : 30u, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!srv->d) {
        snprintf(err, errsz, "cannot listen on %s:%d (in use, or not an address of this machine)",
                 cfg->host, cfg->port);
        free(srv);
        return WX_ERR_IO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : cfg->port;
    if (start_loop(srv) != 0) {
        snprintf(err, errsz, "cannot start the HTTP event loop");
        MHD_stop_daemon(srv->d);
        if (srv->wake_fd >= 0)
            close(srv->wake_fd);
        free(srv);
        return WX_ERR_IO;
    }
    *out = srv;
    return WX_OK;
}

int wx_http_port(const struct wx_http_server *s)
{
    return s->port;
}

void wx_http_stop(struct wx_http_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    uint64_t one = 1;
    ssize_t n = write(s->wake_fd, &one, sizeof one);
    (void)n;
    pthread_join(s->loop, NULL);
    MHD_stop_daemon(s->d);
    if (s->fibers > 0)
        return; /* handlers still parked past the drain: their wakes may yet come (from the
                 * store's threads) and find s and wake_fd, which are therefore kept */
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->omu);
    free(s);
}
