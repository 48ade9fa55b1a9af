/*
 * cmd_oidc.c — `wxauth oidc client add|list|show|rm|reset-secret` and `wxauth oidc key
 * list|rotate`: the clients (relying parties) of the gate's OpenID Connect provider and its
 * signing keys, in the store every gate of a deployment shares (docs/oidc.md). They may run while
 * gates serve the same store. Exit codes: 0 done, 1 store failure, 2 usage, 3 not found.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cred.h"
#include "oidc.h"
#include "store.h"

struct oopts {
    const char *db, *id, *name, *scopes, *subject, *alg;
    const char *redirect[WX_OIDC_MAX_URIS + 1], *logout[WX_OIDC_MAX_URIS + 1];
    int nredirect, nlogout, pub, json, help;
    const char *pos[2]; /* the client_id */
    int npos;
};

static const char help[] =
    "Usage:\n"
    "  wxauth oidc client add --db STORE --redirect-uri URI [--redirect-uri URI]...\n"
    "                         [--id ID] [--name NAME] [--post-logout-uri URI]...\n"
    "                         [--scopes \"openid profile offline_access\"]\n"
    "                         [--subject openid|unionid] [--alg RS256|ES256] [--public] [--json]\n"
    "  wxauth oidc client list --db STORE [--json]\n"
    "  wxauth oidc client show --db STORE ID [--json]\n"
    "  wxauth oidc client rm --db STORE ID\n"
    "  wxauth oidc client reset-secret --db STORE ID [--json]\n"
    "  wxauth oidc key list --db STORE [--json]\n"
    "  wxauth oidc key rotate --db STORE\n\n"
    "STORE is the gate's --db file or --store URL (or WXAUTH_DB).\n"
    "  --redirect-uri     where the client may receive codes, compared byte for byte (at most 8)\n"
    "  --post-logout-uri  where RP-initiated logout may return to (at most 8)\n"
    "  --id               the client_id (default: generated), [A-Za-z0-9._-], at most 64 bytes\n"
    "  --scopes           the scopes it may ask for (default: all three; openid is required;\n"
    "                     profile gives name and picture, with WeChat's snsapi_userinfo consent)\n"
    "  --subject          sub is the openid (default), or the unionid when the app has one\n"
    "  --alg              how its ID tokens are signed (default RS256)\n"
    "  --public           a client that cannot keep a secret (a SPA, a mobile app): it\n"
    "                     authenticates with PKCE (S256) only\n"
    "add and reset-secret print the client secret once. key rotate makes a new key of each\n"
    "algorithm now; the gate keeps publishing the old ones until their tokens have expired.\n";

static int parse(int argc, char **argv, struct oopts *o)
{
    memset(o, 0, sizeof *o);
    o->db = getenv("WXAUTH_DB");
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--public"))
            o->pub = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            o->help = 1;
        else if (!strcmp(a, "--db"))
            slot = &o->db;
        else if (!strcmp(a, "--id"))
            slot = &o->id;
        else if (!strcmp(a, "--name"))
            slot = &o->name;
        else if (!strcmp(a, "--scopes"))
            slot = &o->scopes;
        else if (!strcmp(a, "--subject"))
            slot = &o->subject;
        else if (!strcmp(a, "--alg"))
            slot = &o->alg;
        else if (!strcmp(a, "--redirect-uri") || !strcmp(a, "--post-logout-uri")) {
            int lo = a[2] == 'p';
            int *n = lo ? &o->nlogout : &o->nredirect;
            if (*n == WX_OIDC_MAX_URIS) {
                fprintf(stderr, "wxauth oidc: at most %d %s\n", WX_OIDC_MAX_URIS, a);
                return 2;
            }
            slot = lo ? &o->logout[(*n)++] : &o->redirect[(*n)++];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "wxauth oidc: unknown option %s (see --help)\n", a);
            return 2;
        } else if (o->npos < 2) {
            o->pos[o->npos++] = a;
        } else {
            fprintf(stderr, "wxauth oidc: too many arguments\n");
            return 2;
        }
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "wxauth oidc: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
        }
    }
    return 0;
}

static void print_client(const struct wx_oidc_client *c, const char *secret)
{
    printf("client_id:     %s\n", c->id);
    if (secret)
        printf("client_secret: %s   (shown once: keep it now)\n", secret);
    printf("name:          %s\nauth:          %s\n", c->name,
           c->confidential ? "client_secret_basic or client_secret_post"
                           : "none (public client: PKCE S256 required)");
    for (int i = 0; i < c->nredirect; i++)
        printf("redirect_uri:  %s\n", c->redirect[i]);
    for (int i = 0; i < c->nlogout; i++)
        printf("post_logout:   %s\n", c->logout[i]);
    printf("scopes:        %s\nsubject:       %s\nalg:           %s\n", c->scopes,
           c->subject == WX_OIDC_SUB_UNIONID ? "unionid (else openid)" : "openid",
           wx_oidc_alg_name(c->alg));
}

static void show(const struct oopts *o, const struct wx_oidc_client *c, const char *secret)
{
    if (!o->json) {
        print_client(c, secret);
        return;
    }
    json_t *j = wx_oidc_client_json(c);
    if (j && secret)
        json_object_set_new(j, "client_secret", json_string(secret));
    wx_cli_print_json(j);
}

static int uris_into(const char *const *in, int n, char (*out)[WX_OIDC_MAX_URI + 1], int *nout)
{
    char err[200];
    for (int i = 0; i < n; i++) {
        if (wx_oidc_check_uri(in[i], err, sizeof err)) {
            fprintf(stderr, "wxauth oidc: %s\n", err);
            return 2;
        }
        snprintf(out[i], WX_OIDC_MAX_URI + 1, "%s", in[i]);
    }
    *nout = n;
    return 0;
}

/* The client o describes, checked; 0 or the exit code. */
static int client_of(const struct oopts *o, struct wx_oidc_client *c)
{
    memset(c, 0, sizeof *c);
    if (o->id) {
        if (wx_oidc_check_id(o->id)) {
            fprintf(stderr, "wxauth oidc: --id: 1 to %d of A-Z a-z 0-9 . _ -\n", WX_OIDC_MAX_ID);
            return 2;
        }
        snprintf(c->id, sizeof c->id, "%s", o->id);
    } else {
        unsigned char raw[10];
        wx_cred_random(raw, sizeof raw);
        int n = snprintf(c->id, sizeof c->id, "wxoidc-");
        for (size_t i = 0; i < sizeof raw; i++)
            n += snprintf(c->id + n, sizeof c->id - (size_t)n, "%02x", raw[i]);
    }
    if (!o->nredirect) {
        fprintf(stderr, "wxauth oidc: give at least one --redirect-uri\n");
        return 2;
    }
    if (o->name && strlen(o->name) > WX_OIDC_MAX_NAME) {
        fprintf(stderr, "wxauth oidc: --name: at most %d bytes\n", WX_OIDC_MAX_NAME);
        return 2;
    }
    snprintf(c->name, sizeof c->name, "%s", o->name ? o->name : c->id);
    const char *scopes = o->scopes ? o->scopes : WX_OIDC_SCOPES_ALL;
    if (wx_oidc_check_scopes(scopes)) {
        fprintf(stderr, "wxauth oidc: --scopes: openid and any of profile, offline_access\n");
        return 2;
    }
    snprintf(c->scopes, sizeof c->scopes, "%s", scopes);
    if (o->subject && strcmp(o->subject, "openid") && strcmp(o->subject, "unionid")) {
        fprintf(stderr, "wxauth oidc: --subject: openid or unionid\n");
        return 2;
    }
    c->subject =
        o->subject && !strcmp(o->subject, "unionid") ? WX_OIDC_SUB_UNIONID : WX_OIDC_SUB_OPENID;
    c->alg = o->alg ? wx_oidc_alg_of(o->alg) : WX_OIDC_RS256;
    if (c->alg < 0) {
        fprintf(stderr, "wxauth oidc: --alg: RS256 or ES256\n");
        return 2;
    }
    c->created = (int64_t)time(NULL);
    return uris_into(o->redirect, o->nredirect, c->redirect, &c->nredirect) ||
                   uris_into(o->logout, o->nlogout, c->logout, &c->nlogout)
               ? 2
               : 0;
}

static void list_one(void *ud, const struct wx_oidc_client *c)
{
    if (ud)
        json_array_append_new(ud, wx_oidc_client_json(c));
    else
        printf("%-28s %-24s %s\n", c->id, c->name, c->redirect[0]);
}

static int cmd_client(const char *sub, const struct oopts *o, struct wx_store *s,
                      const struct wx_keys *k)
{
    struct wx_oidc_client c;
    char secret[WX_OIDC_SECRET_LEN + 1];
    int rc;
    if (!strcmp(sub, "add")) {
        if ((rc = client_of(o, &c)))
            return rc;
        if (!o->pub)
            wx_oidc_secret_new(k, &c, secret);
        rc = wx_oidc_client_put(s, &c, 1);
        if (rc == WX_ERR_CONFLICT) {
            fprintf(stderr, "wxauth oidc: a client %s exists already\n", c.id);
            return 2;
        }
        if (rc)
            return 1;
        show(o, &c, o->pub ? NULL : secret);
        return 0;
    }
    if (!strcmp(sub, "list")) {
        json_t *arr = o->json ? json_array() : NULL;
        rc = wx_oidc_client_list(s, list_one, arr) ? 1 : 0;
        if (arr)
            wx_cli_print_json(arr);
        return rc;
    }
    if (o->npos != 1) {
        fprintf(stderr, "wxauth oidc client %s: which client? give its client_id\n", sub);
        return 2;
    }
    rc = wx_oidc_client_get(s, o->pos[0], &c);
    if (rc == WX_ERR_NOTFOUND) {
        fprintf(stderr, "wxauth oidc: no client %s\n", o->pos[0]);
        return 3;
    }
    if (rc)
        return 1;
    if (!strcmp(sub, "show")) {
        show(o, &c, NULL);
    } else if (!strcmp(sub, "rm")) {
        if (wx_oidc_client_delete(s, c.id))
            return 1;
        printf("removed %s (its tokens stop working at their next use)\n", c.id);
    } else {
        if (!c.confidential) {
            fprintf(stderr, "wxauth oidc: %s is a public client: it has no secret\n", c.id);
            return 2;
        }
        wx_oidc_secret_new(k, &c, secret);
        if (wx_oidc_client_put(s, &c, 0))
            return 1;
        show(o, &c, secret);
    }
    return 0;
}

static int cmd_key(const char *sub, const struct oopts *o, struct wx_store *s,
                   const struct wx_keys *k)
{
    struct wx_oidc_keyset ks;
    int64_t now = (int64_t)time(NULL);
    if (!strcmp(sub, "rotate")) {
        char kid[WX_OIDC_KID_LEN + 1];
        for (int alg = 0; alg < WX_OIDC_ALGS; alg++) {
            if (wx_oidc_key_add(s, k, alg, now, kid))
                return 1;
            printf("new %s key %s\n", wx_oidc_alg_name(alg), kid);
        }
        return 0;
    }
    if (wx_oidc_keys_load(s, k, &ks))
        return 1;
    json_t *arr = o->json ? json_array() : NULL;
    for (int i = 0; i < ks.n; i++) {
        const struct wx_oidc_key *key = &ks.key[i];
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "kid", key->kid, "alg",
                                                 wx_oidc_alg_name(key->alg), "created",
                                                 (json_int_t)key->created, "retired",
                                                 (json_int_t)key->retired));
        else
            printf("%s  %s  created %lld  %s\n", key->kid, wx_oidc_alg_name(key->alg),
                   (long long)key->created, key->retired ? "retired" : "signing");
    }
    if (arr)
        wx_cli_print_json(arr);
    else if (!ks.n)
        printf("no keys yet: the first gate started with --oidc makes them\n");
    wx_oidc_keys_free(&ks);
    return 0;
}

int wx_cmd_oidc(int argc, char **argv)
{
    struct oopts o;
    const char *what = argc > 1 ? argv[1] : "", *sub = argc > 2 ? argv[2] : "";
    int rc;
    if (!strcmp(what, "--help") || !strcmp(what, "help") || !strcmp(what, "-h") ||
        !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(help, stdout);
        return 0;
    }
    int client = !strcmp(what, "client"), key = !strcmp(what, "key");
    int known = client ? !strcmp(sub, "add") || !strcmp(sub, "list") || !strcmp(sub, "show") ||
                             !strcmp(sub, "rm") || !strcmp(sub, "reset-secret")
                : key ? !strcmp(sub, "list") || !strcmp(sub, "rotate")
                      : 0;
    if (!known) {
        fprintf(stderr, "wxauth oidc: unknown command '%s %s'\n\n%s", what, sub, help);
        return 2;
    }
    if ((rc = parse(argc, argv, &o)))
        return rc;
    if (o.help) {
        fputs(help, stdout);
        return 0;
    }
    struct wx_store *s;
    struct wx_keys k;
    if ((rc = wx_cli_open_store(o.db, &s, &k)))
        return rc;
    rc = client ? cmd_client(sub, &o, s, &k) : cmd_key(sub, &o, s, &k);
    wx_cli_close_store(s, rc == 0 && strcmp(sub, "list") && strcmp(sub, "show"));
    return rc;
}
