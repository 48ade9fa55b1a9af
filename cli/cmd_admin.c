/*
 * cmd_admin.c — `wxauth app ...` and `wxauth user ...`: the provider's admin operations on a
 * database file, through the same functions as the admin API (provider/ops.c). They may run
 * while a provider serves the same file. Exit codes: 0 done, 1 store failure, 2 usage, 3 not found.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json.h"
#include "provider.h"

#define MAX_POS 4

/* The options admin commands take; repeatable ones keep every value. */
struct opts {
    const char *db, *name, *nickname, *avatar, *open_account;
    const char *domains[WX_MAX_DOMAINS + 1];
    int ndomains;
    const char *menu[4];
    int nmenu;
    int json, https_only, no_https_only, website, snapshot, unfollow, help;
    const char *pos[MAX_POS];
    int npos;
};

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->db = getenv("WXAUTH_DB");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--https-only"))
            o->https_only = 1;
        else if (!strcmp(a, "--no-https-only"))
            o->no_https_only = 1;
        else if (!strcmp(a, "--website"))
            o->website = 1;
        else if (!strcmp(a, "--snapshot"))
            o->snapshot = 1;
        else if (!strcmp(a, "--unfollow"))
            o->unfollow = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            o->help = 1;
        else if (!strcmp(a, "--db"))
            slot = &o->db;
        else if (!strcmp(a, "--name"))
            slot = &o->name;
        else if (!strcmp(a, "--nickname"))
            slot = &o->nickname;
        else if (!strcmp(a, "--avatar"))
            slot = &o->avatar;
        else if (!strcmp(a, "--open-account"))
            slot = &o->open_account;
        else if (!strcmp(a, "--domain")) {
            if (o->ndomains > WX_MAX_DOMAINS) {
                fprintf(stderr, "wxauth: at most %d --domain\n", WX_MAX_DOMAINS);
                return 2;
            }
            slot = &o->domains[o->ndomains++];
        } else if (!strcmp(a, "--menu")) {
            if (o->nmenu > 3) {
                fprintf(stderr, "wxauth: at most 3 --menu\n");
                return 2;
            }
            slot = &o->menu[o->nmenu++];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "wxauth: unknown option %s (see --help)\n", a);
            return 2;
        } else if (o->npos < MAX_POS) {
            o->pos[o->npos++] = a;
        } else {
            fprintf(stderr, "wxauth: too many arguments\n");
            return 2;
        }
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "wxauth: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
        }
    }
    return 0;
}

/*
 * Closes the database after a command. After a change, waits a little longer than a running
 * provider may keep reading an older snapshot (WX_SNAPSHOT_NS), so that when the command returns
 * the change is in force everywhere.
 */
void wx_cli_close_store(struct wx_store *s, int changed)
{
    s->ops->close(s);
    if (changed) {
        struct timespec ts = {0, 2 * WX_SNAPSHOT_NS};
        nanosleep(&ts, NULL);
    }
}

/* The store's failures, with their reasons (Redis's own words, a WAIT not confirmed...). */
static void log_stderr(void *ud, enum wx_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    fprintf(stderr, "wxauth: %s\n", line);
}

int wx_cli_open_store(const char *db, struct wx_store **s, struct wx_keys *k)
{
    static const struct wx_log store_log = {log_stderr, NULL, WX_LOG_ERROR};
    char err[512] = "";
    wx_store_set_log(&store_log);
    if (!db) {
        fprintf(stderr, "wxauth: which database? give --db FILE (or WXAUTH_DB)\n");
        return 2;
    }
    if (wx_init() || wx_store_open(s, db, err, sizeof err)) {
        fprintf(stderr, "wxauth: %s\n", err[0] ? err : "initialisation failed");
        return 1;
    }
    if (wx_op_keys(*s, k)) {
        fprintf(stderr, "wxauth: cannot read the database's master key\n");
        (*s)->ops->close(*s);
        return 1;
    }
    return 0;
}

void wx_cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static void print_app(const struct wx_app *a, const char *secret)
{
    printf("appid:    %s\n", a->appid);
    if (secret)
        printf("secret:   %s   (shown once: keep it now)\n", secret);
    printf("name:     %s\ndomains:  %s\n", a->name, a->domains);
    if (a->open_account[0])
        printf("open account: %s (unionid enabled)\n", a->open_account);
    if (a->menu[0])
        printf("menu:     %s\n", a->menu);
    if (a->https_only)
        printf("https only\n");
    if (a->kind == WX_APP_WEBSITE)
        printf("kind:     website app (refused by the authorize endpoint: 10016)\n");
}

static void list_app(void *ud, const struct wx_app *a)
{
    if (ud)
        json_array_append_new(ud, wx_op_app_json(a, NULL));
    else
        printf("%s  %-24s %s\n", a->appid, a->name, a->domains);
}

static void list_user(void *ud, const struct wx_user *u)
{
    if (ud)
        json_array_append_new(ud, wx_op_user_json(u));
    else
        printf("%-6lld %s%s\n", (long long)u->id, u->nickname, u->snapshot ? "  (snapshot)" : "");
}

static const char app_help[] =
    "Usage:\n"
    "  wxauth app add --db FILE --name NAME --domain HOST [--domain HOST2]\n"
    "                 [--open-account ID] [--menu LABEL=URL]... [--https-only] [--website] "
    "[--json]\n"
    "  wxauth app list --db FILE [--json]\n"
    "  wxauth app show --db FILE APPID [--json]\n"
    "  wxauth app set --db FILE APPID [--name NAME] [--domain HOST]... [--menu LABEL=URL]...\n"
    "                 [--open-account ID] [--https-only|--no-https-only] [--json]\n"
    "  wxauth app rm --db FILE APPID\n"
    "  wxauth app reset-secret --db FILE APPID [--json]\n\n"
    "  --domain        web-authorization domain (网页授权域名): a bare host, optionally :port;\n"
    "                  redirect_uri must be on exactly this host (at most 2)\n"
    "  --open-account  open-platform account id: apps sharing one get the same unionid\n"
    "  --menu          a custom-menu entry shown on the sandbox's WeChat home (at most 3)\n"
    "  --website       a website app (Open Platform AppID): the authorize endpoint refuses it\n"
    "add and reset-secret print the AppSecret once; reset-secret revokes every token issued\n"
    "before it.\n";

static const char user_help[] =
    "Usage:\n"
    "  wxauth user add --db FILE --nickname NAME [--avatar URL] [--snapshot] [--json]\n"
    "  wxauth user list --db FILE [--json]\n"
    "  wxauth user follow --db FILE USER APPID [--unfollow]\n"
    "  wxauth user snapshot --db FILE USER on|off\n\n"
    "add prints the new user's id. --snapshot makes the user a snapshot-page virtual user\n"
    "(is_snapshotuser: 1; sns/userinfo answers 48001).\n";

static int cmd_app_add(const struct opts *o, struct wx_store *s, const struct wx_keys *k)
{
    struct wx_app_spec spec = {0};
    struct wx_app app;
    char secret[WX_SECRET_LEN + 1], err[512];
    spec.name = o->name;
    spec.ndomains = o->ndomains;
    memcpy(spec.domains, o->domains, sizeof(spec.domains));
    spec.nmenu = o->nmenu;
    memcpy(spec.menu, o->menu, sizeof(spec.menu));
    spec.open_account = o->open_account;
    spec.https_only = o->https_only;
    spec.kind = o->website ? WX_APP_WEBSITE : WX_APP_OA;
    int rc = wx_op_app_create(s, k, &spec, (int64_t)time(NULL), &app, secret, err, sizeof err);
    if (rc) {
        fprintf(stderr, "wxauth app add: %s\n", err);
        return rc == WX_ERR_INVALID ? 2 : 1;
    }
    if (o->json)
        wx_cli_print_json(wx_op_app_json(&app, secret));
    else
        print_app(&app, secret);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

/* Splits sep-separated text (copied into buf) into up to max pointers. */
static int split(const char *text, char sep, char *buf, size_t bufsz, const char **out, int max)
{
    int n = 0;
    snprintf(buf, bufsz, "%s", text);
    for (char *p = buf; *p && n < max;) {
        out[n++] = p;
        char *e = strchr(p, sep);
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    return n;
}

/* `app set`: the options given replace those fields; the others stay. */
static int cmd_app_set(const struct opts *o, struct wx_store *s, struct wx_app *app)
{
    struct wx_app_spec spec = {0};
    char dbuf[WX_MAX_DOMAINS_TEXT], mbuf[WX_MAX_MENU_TEXT], err[512];
    spec.name = o->name ? o->name : app->name;
    spec.ndomains = o->ndomains;
    memcpy(spec.domains, o->domains, sizeof(spec.domains));
    if (!o->ndomains)
        spec.ndomains = split(app->domains, ',', dbuf, sizeof dbuf, spec.domains, WX_MAX_DOMAINS);
    spec.nmenu = o->nmenu;
    memcpy(spec.menu, o->menu, sizeof(spec.menu));
    if (!o->nmenu)
        spec.nmenu = split(app->menu, '\n', mbuf, sizeof mbuf, spec.menu, 3);
    spec.open_account = o->open_account ? o->open_account : app->open_account;
    spec.https_only = o->https_only || (app->https_only && !o->no_https_only);
    spec.kind = app->kind;
    if (wx_op_app_fill(&spec, app, err, sizeof err)) {
        fprintf(stderr, "wxauth app set: %s\n", err);
        return 2;
    }
    if (s->ops->app_update(s, app))
        return 1;
    if (o->json)
        wx_cli_print_json(wx_op_app_json(app, NULL));
    else
        print_app(app, NULL);
    return 0;
}

static int find_app(struct wx_store *s, const struct opts *o, struct wx_app *app)
{
    if (o->npos != 1) {
        fprintf(stderr, "wxauth app: give one APPID\n");
        return 2;
    }
    int rc = s->ops->app_by_appid(s, o->pos[0], app);
    if (rc == WX_ERR_NOTFOUND)
        fprintf(stderr, "wxauth app: no app %s in this database\n", o->pos[0]);
    return rc == WX_ERR_NOTFOUND ? 3 : rc ? 1 : 0;
}

int wx_cmd_app(int argc, char **argv)
{
    struct opts o;
    struct wx_store *s = NULL;
    struct wx_keys k;
    struct wx_app app;
    char secret[WX_SECRET_LEN + 1];
    const char *sub = argc > 1 ? argv[1] : "--help";
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    if (o.help || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(app_help, stdout);
        return 0;
    }
    if (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "rm") &&
        strcmp(sub, "reset-secret") && strcmp(sub, "set")) {
        fprintf(stderr, "wxauth app: unknown subcommand '%s'\n\n%s", sub, app_help);
        return 2;
    }
    if ((rc = wx_cli_open_store(o.db, &s, &k)))
        return rc;
    if (!strcmp(sub, "add")) {
        rc = cmd_app_add(&o, s, &k);
    } else if (!strcmp(sub, "list")) {
        json_t *arr = o.json ? json_array() : NULL;
        rc = s->ops->app_list(s, list_app, arr) ? 1 : 0;
        if (arr)
            wx_cli_print_json(arr);
    } else if (!(rc = find_app(s, &o, &app))) {
        if (!strcmp(sub, "set")) {
            rc = cmd_app_set(&o, s, &app);
        } else if (!strcmp(sub, "show")) {
            if (o.json)
                wx_cli_print_json(wx_op_app_json(&app, NULL));
            else
                print_app(&app, NULL);
        } else if (!strcmp(sub, "rm")) {
            rc = s->ops->app_delete(s, app.id) ? 1 : 0;
            if (!rc)
                printf("removed %s\n", app.appid);
        } else if (wx_op_app_reset_secret(s, &k, &app, secret)) {
            rc = 1;
        } else {
            if (o.json)
                wx_cli_print_json(wx_op_app_json(&app, secret));
            else
                print_app(&app, secret);
            sodium_memzero(secret, sizeof secret);
        }
    }
    if (rc == 1)
        fprintf(stderr, "wxauth app %s: the database failed\n", sub);
    sodium_memzero(&k, sizeof k);
    wx_cli_close_store(s, rc == 0 && strcmp(sub, "list") && strcmp(sub, "show"));
    return rc;
}

static int user_id(const char *text, int64_t *id)
{
    char *end = NULL;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end || v <= 0) {
        fprintf(stderr, "wxauth user: '%s' is not a user id (see wxauth user list)\n",
                text ? text : "");
        return 2;
    }
    *id = v;
    return 0;
}

static int cmd_user_follow(const struct opts *o, struct wx_store *s)
{
    int64_t uid = 0;
    struct wx_user u;
    struct wx_app app;
    if (o->npos != 2) {
        fprintf(stderr, "wxauth user follow: give USER and APPID\n");
        return 2;
    }
    if (user_id(o->pos[0], &uid))
        return 2;
    if (s->ops->user_get(s, uid, &u)) {
        fprintf(stderr, "wxauth user follow: no user %s\n", o->pos[0]);
        return 3;
    }
    if (s->ops->app_by_appid(s, o->pos[1], &app)) {
        fprintf(stderr, "wxauth user follow: no app %s\n", o->pos[1]);
        return 3;
    }
    if (s->ops->follow_set(s, uid, app.id, !o->unfollow, (int64_t)time(NULL)))
        return 1;
    printf("%s %s %s\n", u.nickname, o->unfollow ? "no longer follows" : "follows", app.name);
    return 0;
}

int wx_cmd_user(int argc, char **argv)
{
    struct opts o;
    struct wx_store *s = NULL;
    struct wx_keys k;
    struct wx_user u;
    char err[512];
    const char *sub = argc > 1 ? argv[1] : "--help";
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    if (o.help || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(user_help, stdout);
        return 0;
    }
    if (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "follow") &&
        strcmp(sub, "snapshot")) {
        fprintf(stderr, "wxauth user: unknown subcommand '%s'\n\n%s", sub, user_help);
        return 2;
    }
    if ((rc = wx_cli_open_store(o.db, &s, &k)))
        return rc;
    sodium_memzero(&k, sizeof k);
    if (!strcmp(sub, "add")) {
        rc = wx_op_user_create(s, o.nickname, o.avatar, 0, o.snapshot, (int64_t)time(NULL), &u, err,
                               sizeof err);
        if (rc)
            fprintf(stderr, "wxauth user add: %s\n", err);
        else if (o.json)
            wx_cli_print_json(wx_op_user_json(&u));
        else
            printf("%lld\n", (long long)u.id);
        rc = rc == WX_ERR_INVALID ? 2 : rc ? 1 : 0;
    } else if (!strcmp(sub, "list")) {
        json_t *arr = o.json ? json_array() : NULL;
        rc = s->ops->user_list(s, list_user, arr) ? 1 : 0;
        if (arr)
            wx_cli_print_json(arr);
    } else if (!strcmp(sub, "follow")) {
        rc = cmd_user_follow(&o, s);
    } else {
        int64_t uid = 0;
        int on = o.npos == 2 && !strcmp(o.pos[1], "on");
        if (o.npos != 2 || (!on && strcmp(o.pos[1], "off") != 0)) {
            fprintf(stderr, "wxauth user snapshot: give USER and on|off\n");
            rc = 2;
        } else if (!(rc = user_id(o.pos[0], &uid))) {
            int r = s->ops->user_set_snapshot(s, uid, on);
            rc = r == WX_ERR_NOTFOUND ? 3 : r ? 1 : 0;
            if (rc == 3)
                fprintf(stderr, "wxauth user snapshot: no user %s\n", o.pos[0]);
        }
    }
    wx_cli_close_store(s, rc == 0 && strcmp(sub, "list") && strcmp(sub, "show"));
    return rc;
}
