/*
 * http.h — the libmicrohttpd glue: server-neutral request/response structs, the two-phase
 * access-handler idiom (DEPENDENCIES.md trap 1), bounded bodies, raw query strings (so the
 * program decodes each parameter exactly once), suspend/resume for responses that wait on the
 * group commit, security headers for pages and JSON, and one log line per request.
 */
#ifndef WX_HTTP_H
#define WX_HTTP_H

#include <stdint.h>
#include <wxauth/base.h>

#include "log.h"

#define WX_HTTP_MAX_HEADERS 12
/* The largest response body (an /admin/issue of 100,000 token pairs is about 11 MB). */
#define WX_HTTP_MAX_RESPONSE (32u * 1024 * 1024)

struct MHD_Connection;
struct wx_http_server;

struct wx_http_req {
    /* request (valid until the request completes) */
    const char *method;
    char *target;          /* raw request target as received, NUL-terminated */
    struct wx_slice path;  /* raw path (no query) */
    struct wx_slice query; /* raw query, without '?' */
    struct wx_buf body;
    char peer[48];
    int64_t start_ns;
    /* response */
    int status;
    struct wx_buf out;
    const char *content_type;
    const char *hname[WX_HTTP_MAX_HEADERS];
    char *hvalue[WX_HTTP_MAX_HEADERS];
    unsigned char howned[WX_HTTP_MAX_HEADERS];
    int nheaders;
    int close;
    /* bookkeeping for logs and metrics, set by the program */
    const char *route; /* static route label; NULL: "other" */
    int errcode;
    void *app; /* program data attached to the request (freed by the program's on_done) */
    /* internal */
    struct MHD_Connection *conn;
    struct wx_http_server *server;
    int phase;
    int body_too_big;
    int suspended;             /* the handler called wx_http_suspend */
    struct wx_fiber *fiber;    /* the handler's fiber while it is parked */
    _Atomic int fstate;        /* WX_HTTP_WOKEN | WX_HTTP_ORPHAN (http.c) */
    struct wx_http_req *onext; /* in the server's list of orphans to continue */
    char mbuf[16];             /* the method, copied (a longer one is cut: none is served) */
};

struct wx_http_config {
    const char *host; /* numeric address to bind, e.g. 127.0.0.1 */
    int port;         /* 0: pick a free port */
    void (*handler)(struct wx_http_req *req, void *ud);
    /* Called when a request has completed (response sent or connection gone). */
    void (*on_done)(struct wx_http_req *req, void *ud);
    void *ud;
    const struct wx_log *log;
    unsigned conn_limit;
    unsigned timeout_s;
    /*
     * 1: each handler runs on a fiber (fiber.h), so that a store call that waits on the network
     * parks its request instead of the loop (the Redis store); 0: handlers run on the loop.
     */
    int fibers;
};

int wx_http_start(struct wx_http_server **out, const struct wx_http_config *cfg, char *err,
                  size_t errsz);
int wx_http_port(const struct wx_http_server *s);
void wx_http_stop(struct wx_http_server *s);

/* Request header or cookie value (borrowed, valid for the request), or NULL. */
const char *wx_http_header(struct wx_http_req *req, const char *name);
const char *wx_http_cookie(struct wx_http_req *req, const char *name);

/* Sets a response header (the value is copied): replaces one of the same name, except
 * Set-Cookie, which may be sent several times. */
int wx_http_set_header(struct wx_http_req *req, const char *name, const char *value);
/* JSON response headers (SECURITY.md rule 7); the body goes in req->out. */
void wx_http_json(struct wx_http_req *req, int status);
/* HTML page headers (SECURITY.md rule 6). */
void wx_http_page(struct wx_http_req *req, int status);
/* A redirect with no body; status 302 or 303. */
int wx_http_redirect(struct wx_http_req *req, int status, const char *location);
/* A plain-text response. */
void wx_http_text(struct wx_http_req *req, int status, const char *text);

/*
 * The end of a request: records it in m (route, status, errcode, latency) and, at info level,
 * hands one logfmt line to log — method, path (never the query string: secrets travel there),
 * status, errcode, latency, peer.
 */
struct wx_metrics;
void wx_http_record(struct wx_http_req *req, const struct wx_log *log, struct wx_metrics *m);

/*
 * Asynchronous completion: the handler calls wx_http_suspend() before handing the request to
 * another thread; that thread fills the response and calls wx_http_resume(). A resume of a
 * request that was never suspended does nothing (its handler completed it on its own fiber).
 */
void wx_http_suspend(struct wx_http_req *req);
void wx_http_resume(struct wx_http_req *req);
/*
 * Between these two calls, the calling thread's wx_http_resume()s on server s wake its event
 * loop once, at the release, instead of once each (the group-commit writer resumes a whole
 * batch at a time).
 */
void wx_http_hold_wakeups(struct wx_http_server *s);
void wx_http_release_wakeups(struct wx_http_server *s);

#endif
