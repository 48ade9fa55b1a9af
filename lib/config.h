/*
 * config.h — configuration declared once. A program lists its directives in one table
 * (name, type, default, help, bounds); defaults, a config file ("name = value" lines),
 * WXAUTH_* environment variables and --flags all fill that same table, in that order of
 * precedence. Errors name the directive and the source.
 */
#ifndef WX_CONFIG_H
#define WX_CONFIG_H

#include <wxauth/base.h>

enum wx_cfg_type { WX_CFG_STR, WX_CFG_INT, WX_CFG_BOOL };

struct wx_cfg_directive {
    const char *name; /* flag --name, env WXAUTH_NAME (dashes become underscores) */
    enum wx_cfg_type type;
    const char *def;    /* default as text, or NULL for "unset" */
    long long min, max; /* bounds for WX_CFG_INT */
    const char *help;
};

#define WX_CFG_MAX 32

struct wx_cfg {
    const struct wx_cfg_directive *dirs;
    size_t n;
    char *values[WX_CFG_MAX];
};

/* Fills defaults. dirs must outlive cfg. */
int wx_cfg_init(struct wx_cfg *cfg, const struct wx_cfg_directive *dirs, size_t n);
void wx_cfg_free(struct wx_cfg *cfg);
/* Sets one directive from text, validating it; err receives a readable reason. */
int wx_cfg_set(struct wx_cfg *cfg, const char *name, const char *value, char *err, size_t errsz);
int wx_cfg_load_file(struct wx_cfg *cfg, const char *path, char *err, size_t errsz);
int wx_cfg_load_env(struct wx_cfg *cfg, char *err, size_t errsz);
/*
 * Parses argv[first..argc): "--name value", "--name=value", "--flag" for booleans.
 * "--config FILE" loads a file at that point. Non-option arguments are left in place and
 * counted in *npos (moved to the front of argv + first). Returns WX_OK or WX_ERR_INVALID.
 */
int wx_cfg_parse_args(struct wx_cfg *cfg, int argc, char **argv, int first, int *npos, char *err,
                      size_t errsz);
/* Loads the file named by WXAUTH_CONFIG or --config, then env, then the flags. */
int wx_cfg_load_all(struct wx_cfg *cfg, int argc, char **argv, int first, int *npos, char *err,
                    size_t errsz);

const char *wx_cfg_str(const struct wx_cfg *cfg, const char *name);
long long wx_cfg_int(const struct wx_cfg *cfg, const char *name);
int wx_cfg_bool(const struct wx_cfg *cfg, const char *name);
/* Appends the option reference (for --help) to b. */
int wx_cfg_help(const struct wx_cfg *cfg, struct wx_buf *b);

#endif
