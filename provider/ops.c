/*
 * ops.c — the operations on apps and users that the admin API and the CLI share: validation,
 * identifier and secret generation, and their JSON views.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "html.h"
#include "provider.h"

int wx_op_keys(struct wx_store *s, struct wx_keys *k)
{
    unsigned char master[WX_KEY_LEN];
    int rc = s->ops->master_key(s, master);
    if (rc == WX_OK)
        wx_keys_derive(k, master);
    sodium_memzero(master, sizeof master);
    return rc;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char raw[32];
    randombytes_buf(raw, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, raw, nbytes);
    sodium_memzero(raw, sizeof raw);
}

static int menu_valid(const char *entry)
{
    const char *eq = strchr(entry, '=');
    if (!eq || eq == entry || (size_t)(eq - entry) > 32 || strchr(entry, '\n'))
        return 0;
    struct wx_uri u;
    return wx_utf8_valid(entry, (size_t)(eq - entry)) &&
           wx_uri_parse(wx_slice_cstr(eq + 1), &u) == WX_OK;
}

static int open_account_valid(const char *s)
{
    size_t n = strlen(s);
    if (n > WX_MAX_OPEN_ACCOUNT)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int wx_op_app_fill(const struct wx_app_spec *spec, struct wx_app *out, char *err, size_t errsz)
{
    size_t nlen = spec->name ? strlen(spec->name) : 0;
    if (!nlen || nlen > WX_MAX_APPNAME || !wx_utf8_valid(spec->name, nlen)) {
        snprintf(err, errsz, "name: 1 to %d bytes of UTF-8 text", WX_MAX_APPNAME);
        return WX_ERR_INVALID;
    }
    if (spec->ndomains < 1 || spec->ndomains > WX_MAX_DOMAINS) {
        snprintf(err, errsz, "domain: give 1 or %d web-authorization domains", WX_MAX_DOMAINS);
        return WX_ERR_INVALID;
    }
    out->domains[0] = '\0';
    for (int i = 0; i < spec->ndomains; i++) {
        if (wx_domain_valid(wx_slice_cstr(spec->domains[i])) != WX_OK) {
            snprintf(err, errsz,
                     "domain '%s': a bare host name such as www.example.com or localhost:8080 "
                     "(no scheme, path or trailing dot)",
                     spec->domains[i]);
            return WX_ERR_INVALID;
        }
        size_t used = strlen(out->domains);
        snprintf(out->domains + used, sizeof out->domains - used, "%s%s", i ? "," : "",
                 spec->domains[i]);
    }
    if (spec->open_account && !open_account_valid(spec->open_account)) {
        snprintf(err, errsz, "open-account: up to %d of [A-Za-z0-9_-]", WX_MAX_OPEN_ACCOUNT);
        return WX_ERR_INVALID;
    }
    if (spec->nmenu > 3) {
        snprintf(err, errsz, "menu: at most 3 entries");
        return WX_ERR_INVALID;
    }
    out->menu[0] = '\0';
    for (int i = 0; i < spec->nmenu; i++) {
        size_t used = strlen(out->menu);
        if (!menu_valid(spec->menu[i]) || strlen(spec->menu[i]) + 1 >= sizeof out->menu - used) {
            snprintf(err, errsz, "menu '%s': expected LABEL=http(s)://URL", spec->menu[i]);
            return WX_ERR_INVALID;
        }
        snprintf(out->menu + used, sizeof out->menu - used, "%s%s", i ? "\n" : "", spec->menu[i]);
    }
    snprintf(out->name, sizeof out->name, "%s", spec->name);
    snprintf(out->open_account, sizeof out->open_account, "%s",
             spec->open_account ? spec->open_account : "");
    out->kind = spec->kind;
    out->https_only = spec->https_only;
    return WX_OK;
}

int wx_op_app_create(struct wx_store *s, const struct wx_keys *k, const struct wx_app_spec *spec,
                     int64_t now, struct wx_app *out, char secret_out[WX_SECRET_LEN + 1], char *err,
                     size_t errsz)
{
    memset(out, 0, sizeof(*out));
    int rc = wx_op_app_fill(spec, out, err, errsz);
    if (rc)
        return rc;
    out->created = now;
    for (int tries = 0; tries < 4; tries++) {
        memcpy(out->appid, "wx", 2);
        random_hex(out->appid + 2, 8);
        random_hex(secret_out, WX_SECRET_LEN / 2);
        wx_secret_mac(k, (struct wx_slice){secret_out, WX_SECRET_LEN}, out->secret_mac);
        if ((rc = s->ops->app_insert(s, out)) != WX_ERR_CONFLICT)
            break;
    }
    if (rc)
        snprintf(err, errsz, "store error while adding the app");
    return rc;
}

int wx_op_app_reset_secret(struct wx_store *s, const struct wx_keys *k, struct wx_app *app,
                           char secret_out[WX_SECRET_LEN + 1])
{
    random_hex(secret_out, WX_SECRET_LEN / 2);
    wx_secret_mac(k, (struct wx_slice){secret_out, WX_SECRET_LEN}, app->secret_mac);
    return s->ops->app_set_secret(s, app->id, app->secret_mac);
}

int wx_op_user_create(struct wx_store *s, const char *nickname, const char *avatar, int sex,
                      int snapshot, int64_t now, struct wx_user *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof(*out));
    size_t n = nickname ? strlen(nickname) : 0;
    if (!n || n > WX_MAX_NICKNAME || !wx_utf8_valid(nickname, n)) {
        snprintf(err, errsz, "nickname: 1 to %d bytes of UTF-8 text (emoji welcome)",
                 WX_MAX_NICKNAME);
        return WX_ERR_INVALID;
    }
    struct wx_uri u;
    if (avatar && *avatar &&
        (strlen(avatar) > WX_MAX_AVATAR || wx_uri_parse(wx_slice_cstr(avatar), &u) != WX_OK)) {
        snprintf(err, errsz, "avatar: an http(s) URL of at most %d bytes", WX_MAX_AVATAR);
        return WX_ERR_INVALID;
    }
    if (sex < 0 || sex > 2) {
        snprintf(err, errsz, "sex: 0, 1 or 2");
        return WX_ERR_INVALID;
    }
    snprintf(out->nickname, sizeof out->nickname, "%s", nickname);
    snprintf(out->avatar, sizeof out->avatar, "%s", avatar ? avatar : "");
    out->sex = sex;
    out->snapshot = snapshot;
    out->created = now;
    int rc = s->ops->user_insert(s, out);
    if (rc)
        snprintf(err, errsz, "store error while adding the user");
    return rc;
}

/* Appends each sep-separated piece of text to arr as a JSON string. */
static json_t *split_json(const char *text, char sep)
{
    json_t *arr = json_array();
    const char *p = text;
    while (arr && *p) {
        const char *e = strchr(p, sep);
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n)
            json_array_append_new(arr, json_stringn(p, n));
        if (!e)
            break;
        p = e + 1;
    }
    return arr;
}

json_t *wx_op_app_json(const struct wx_app *a, const char *secret)
{
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:s, s:o, s:b, s:s, s:I}", "appid", a->appid, "name", a->name,
                  "domains", split_json(a->domains, ','), "open_account", a->open_account, "menu",
                  split_json(a->menu, '\n'), "https_only", a->https_only, "kind",
                  a->kind == WX_APP_WEBSITE ? "website" : "official_account", "created",
                  (json_int_t)a->created);
    if (o && secret)
        json_object_set_new(o, "secret", json_string(secret));
    return o;
}

json_t *wx_op_user_json(const struct wx_user *u)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)u->id);
    return json_pack("{s:s, s:s, s:s, s:i, s:b, s:I}", "id", id, "nickname", u->nickname, "avatar",
                     u->avatar, "sex", u->sex, "is_snapshotuser", u->snapshot, "created",
                     (json_int_t)u->created);
}
