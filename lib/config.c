/*
 * config.c — one table of directives filled from defaults, a file, the environment and flags.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static int find(const struct wx_cfg *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strlen(cfg->dirs[i].name) == len && !strncmp(cfg->dirs[i].name, name, len))
            return (int)i;
    return -1;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = 0;
    else
        return WX_ERR_INVALID;
    return WX_OK;
}

static int parse_int(const char *v, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < min || x > max)
        return WX_ERR_INVALID;
    *out = x;
    return WX_OK;
}

static int set_idx(struct wx_cfg *cfg, int i, const char *value, char *err, size_t errsz)
{
    const struct wx_cfg_directive *d = &cfg->dirs[i];
    long long x;
    int b;
    if (d->type == WX_CFG_INT && parse_int(value, d->min, d->max, &x)) {
        snprintf(err, errsz, "%s: '%s' is not a whole number from %lld to %lld", d->name, value,
                 d->min, d->max);
        return WX_ERR_INVALID;
    }
    if (d->type == WX_CFG_BOOL && parse_bool(value, &b)) {
        snprintf(err, errsz, "%s: '%s' is not true or false", d->name, value);
        return WX_ERR_INVALID;
    }
    char *copy = strdup(value);
    if (!copy)
        return WX_ERR_NOMEM;
    free(cfg->values[i]);
    cfg->values[i] = copy;
    return WX_OK;
}

int wx_cfg_init(struct wx_cfg *cfg, const struct wx_cfg_directive *dirs, size_t n)
{
    memset(cfg, 0, sizeof(*cfg));
    if (n > WX_CFG_MAX)
        return WX_ERR_LIMIT;
    cfg->dirs = dirs;
    cfg->n = n;
    for (size_t i = 0; i < n; i++)
        if (dirs[i].def && !(cfg->values[i] = strdup(dirs[i].def)))
            return WX_ERR_NOMEM;
    return WX_OK;
}

void wx_cfg_free(struct wx_cfg *cfg)
{
    for (size_t i = 0; i < cfg->n; i++)
        free(cfg->values[i]);
    memset(cfg, 0, sizeof(*cfg));
}

int wx_cfg_set(struct wx_cfg *cfg, const char *name, const char *value, char *err, size_t errsz)
{
    int i = find(cfg, name, strlen(name));
    if (i < 0) {
        snprintf(err, errsz, "unknown setting '%s'", name);
        return WX_ERR_INVALID;
    }
    return set_idx(cfg, i, value, err, errsz);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int wx_cfg_load_file(struct wx_cfg *cfg, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot open config file %s: %s", path, strerror(errno));
        return WX_ERR_IO;
    }
    char line[4096], inner[512];
    int lineno = 0, rc = WX_OK;
    while (rc == WX_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n')) {
            /* No newline: either the last line of the file, or one longer than the buffer. */
            int c = fgetc(f);
            if (c != EOF) {
                snprintf(err, errsz, "%s:%d: line longer than %zu bytes", path, lineno,
                         sizeof line - 2);
                rc = WX_ERR_LIMIT;
                break;
            }
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsz, "%s:%d: expected 'name = value'", path, lineno);
            rc = WX_ERR_INVALID;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        for (char *p = name; *p; p++)
            if (*p == '_')
                *p = '-';
        rc = wx_cfg_set(cfg, name, value, inner, sizeof inner);
        if (rc)
            snprintf(err, errsz, "%s:%d: %s", path, lineno, inner);
    }
    fclose(f);
    return rc;
}

int wx_cfg_load_env(struct wx_cfg *cfg, char *err, size_t errsz)
{
    char env[96], inner[512];
    for (size_t i = 0; i < cfg->n; i++) {
        size_t k = (size_t)snprintf(env, sizeof env, "WXAUTH_%s", cfg->dirs[i].name);
        for (size_t j = 7; j < k && j < sizeof env; j++)
            env[j] = env[j] == '-' ? '_' : (char)toupper((unsigned char)env[j]);
        const char *v = getenv(env);
        if (v && set_idx(cfg, (int)i, v, inner, sizeof inner)) {
            snprintf(err, errsz, "environment %s: %s", env, inner);
            return WX_ERR_INVALID;
        }
    }
    return WX_OK;
}

/*
 * The flag parser. With load_config, "--config FILE" loads FILE where it stands; without it the
 * option and its argument are skipped (wx_cfg_load_all has already loaded the file first).
 */
static int parse_args(struct wx_cfg *cfg, int argc, char **argv, int first, int *npos, char *err,
                      size_t errsz, int load_config)
{
    int pos = 0;
    for (int a = first; a < argc; a++) {
        char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            argv[first + pos++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        if (nlen == 6 && !strncmp(name, "config", 6)) {
            if (!value && a + 1 >= argc) {
                snprintf(err, errsz, "--config needs a file");
                return WX_ERR_INVALID;
            }
            const char *file = value ? value : argv[++a];
            int rc = load_config ? wx_cfg_load_file(cfg, file, err, errsz) : WX_OK;
            if (rc)
                return rc;
            continue;
        }
        int i = find(cfg, name, nlen);
        if (i < 0) {
            snprintf(err, errsz, "unknown option --%.*s (see --help)", (int)nlen, name);
            return WX_ERR_INVALID;
        }
        if (!value && cfg->dirs[i].type == WX_CFG_BOOL)
            value = "true";
        if (!value) {
            if (a + 1 >= argc) {
                snprintf(err, errsz, "--%s needs a value", cfg->dirs[i].name);
                return WX_ERR_INVALID;
            }
            value = argv[++a];
        }
        char inner[512];
        if (set_idx(cfg, i, value, inner, sizeof inner)) {
            snprintf(err, errsz, "%s", inner);
            return WX_ERR_INVALID;
        }
    }
    *npos = pos;
    return WX_OK;
}

int wx_cfg_parse_args(struct wx_cfg *cfg, int argc, char **argv, int first, int *npos, char *err,
                      size_t errsz)
{
    return parse_args(cfg, argc, argv, first, npos, err, errsz, 1);
}

/*
 * Finds the file named by the last "--config FILE" / "--config=FILE" in argv, walking the
 * arguments as parse_args does (so an option's value is never taken for an option).
 */
static const char *config_arg(const struct wx_cfg *cfg, int argc, char **argv, int first)
{
    const char *file = NULL;
    for (int a = first; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            continue;
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (nlen == 6 && !strncmp(name, "config", 6)) {
            if (eq)
                file = eq + 1;
            else if (a + 1 < argc)
                file = argv[++a];
            continue;
        }
        int i = find(cfg, name, nlen);
        if (i >= 0 && !eq && cfg->dirs[i].type != WX_CFG_BOOL)
            a++;
    }
    return file;
}

int wx_cfg_load_all(struct wx_cfg *cfg, int argc, char **argv, int first, int *npos, char *err,
                    size_t errsz)
{
    /* Precedence defaults < file < env < flags, wherever the file is named. */
    const char *file = config_arg(cfg, argc, argv, first);
    int rc;
    if (!file)
        file = getenv("WXAUTH_CONFIG");
    if (file && *file && (rc = wx_cfg_load_file(cfg, file, err, errsz)))
        return rc;
    if ((rc = wx_cfg_load_env(cfg, err, errsz)))
        return rc;
    return parse_args(cfg, argc, argv, first, npos, err, errsz, 0);
}

const char *wx_cfg_str(const struct wx_cfg *cfg, const char *name)
{
    int i = find(cfg, name, strlen(name));
    return i < 0 ? NULL : cfg->values[i];
}

long long wx_cfg_int(const struct wx_cfg *cfg, const char *name)
{
    const char *v = wx_cfg_str(cfg, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

int wx_cfg_bool(const struct wx_cfg *cfg, const char *name)
{
    const char *v = wx_cfg_str(cfg, name);
    int b = 0;
    return v && parse_bool(v, &b) == WX_OK && b;
}

int wx_cfg_help(const struct wx_cfg *cfg, struct wx_buf *b)
{
    int rc = WX_OK;
    for (size_t i = 0; i < cfg->n && rc == WX_OK; i++) {
        const struct wx_cfg_directive *d = &cfg->dirs[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", d->name,
                 d->type == WX_CFG_BOOL ? "" : (d->type == WX_CFG_INT ? " N" : " VALUE"));
        rc = wx_buf_printf(b, "  %-26s %s", flag, d->help);
        if (rc == WX_OK && d->def && *d->def && d->type != WX_CFG_BOOL)
            rc = wx_buf_printf(b, " (default %s)", d->def);
        if (rc == WX_OK)
            rc = wx_buf_puts(b, "\n");
    }
    return rc;
}
