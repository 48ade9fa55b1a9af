/*
 * test_config.c — unit tests for lib/config.c: one directive table filled from defaults, a
 * config file, WXAUTH_* environment variables and --flags, in that order of precedence
 * (whether the file comes from WXAUTH_CONFIG or --config); integer bounds, boolean flags,
 * unknown options, positional arguments and readable errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct wx_cfg_directive dirs[] = {
    {"listen", WX_CFG_STR, "127.0.0.1", 0, 0, "address to listen on"},
    {"port", WX_CFG_INT, "8080", 1, 65535, "TCP port"},
    {"workers", WX_CFG_INT, "4", 1, 64, "worker threads"},
    {"https-only", WX_CFG_BOOL, "false", 0, 0, "refuse http redirect_uris"},
    {"public-url", WX_CFG_STR, NULL, 0, 0, "public base URL"},
    {"debug", WX_CFG_BOOL, NULL, 0, 0, "debug logging"},
    {"offset", WX_CFG_INT, "0", -100, 100, "clock offset"},
};

static const char *const env_names[] = {"WXAUTH_LISTEN",     "WXAUTH_PORT",       "WXAUTH_WORKERS",
                                        "WXAUTH_HTTPS_ONLY", "WXAUTH_PUBLIC_URL", "WXAUTH_DEBUG",
                                        "WXAUTH_OFFSET",     "WXAUTH_CONFIG"};

static void clear_env(void)
{
    for (size_t i = 0; i < NELEM(env_names); i++)
        unsetenv(env_names[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* Writes text to a fresh temporary file; returns its path (static storage per slot). */
static const char *temp_file(int slot, const char *text)
{
    static char paths[4][64];
    snprintf(paths[slot], sizeof paths[slot], "/tmp/wxauth_test_cfg_XXXXXX");
    int fd = mkstemp(paths[slot]);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return paths[slot];
}

static void init(struct wx_cfg *cfg)
{
    assert_int_equal(wx_cfg_init(cfg, dirs, NELEM(dirs)), WX_OK);
}

static void test_defaults(void **state)
{
    (void)state;
    struct wx_cfg cfg;
    init(&cfg);
    assert_string_equal(wx_cfg_str(&cfg, "listen"), "127.0.0.1");
    assert_int_equal(wx_cfg_int(&cfg, "port"), 8080);
    assert_int_equal(wx_cfg_int(&cfg, "workers"), 4);
    assert_false(wx_cfg_bool(&cfg, "https-only"));
    assert_null(wx_cfg_str(&cfg, "public-url"));
    assert_false(wx_cfg_bool(&cfg, "debug"));
    assert_null(wx_cfg_str(&cfg, "no-such"));
    assert_int_equal(wx_cfg_int(&cfg, "no-such"), 0);
    wx_cfg_free(&cfg);

    struct wx_cfg_directive many[WX_CFG_MAX + 1];
    for (size_t i = 0; i < NELEM(many); i++)
        many[i] = dirs[0];
    assert_int_equal(wx_cfg_init(&cfg, many, NELEM(many)), WX_ERR_LIMIT);
}

/* ---- values: int bounds and booleans ---------------------------------------------------- */

struct set_case {
    const char *name;
    const char *value;
    int rc;
    long long as_int; /* for WX_CFG_INT on success */
    int as_bool;      /* for WX_CFG_BOOL on success */
};

static const struct set_case set_cases[] = {
    {"port", "1", WX_OK, 1, 0},
    {"port", "65535", WX_OK, 65535, 0},
    {"port", "443", WX_OK, 443, 0},
    {"port", "0", WX_ERR_INVALID, 0, 0},
    {"port", "65536", WX_ERR_INVALID, 0, 0},
    {"port", "-1", WX_ERR_INVALID, 0, 0},
    {"port", "", WX_ERR_INVALID, 0, 0},
    {"port", "abc", WX_ERR_INVALID, 0, 0},
    {"port", "80abc", WX_ERR_INVALID, 0, 0},
    {"port", "0x50", WX_ERR_INVALID, 0, 0},
    {"port", "8.0", WX_ERR_INVALID, 0, 0},
    {"port", "99999999999999999999999", WX_ERR_INVALID, 0, 0},
    {"port", "-99999999999999999999999", WX_ERR_INVALID, 0, 0},
    {"workers", "64", WX_OK, 64, 0},
    {"workers", "65", WX_ERR_INVALID, 0, 0},
    {"offset", "-100", WX_OK, -100, 0},
    {"offset", "-101", WX_ERR_INVALID, 0, 0},
    {"offset", "100", WX_OK, 100, 0},
    {"https-only", "true", WX_OK, 0, 1},
    {"https-only", "1", WX_OK, 0, 1},
    {"https-only", "yes", WX_OK, 0, 1},
    {"https-only", "on", WX_OK, 0, 1},
    {"https-only", "false", WX_OK, 0, 0},
    {"https-only", "0", WX_OK, 0, 0},
    {"https-only", "no", WX_OK, 0, 0},
    {"https-only", "off", WX_OK, 0, 0},
    {"https-only", "maybe", WX_ERR_INVALID, 0, 0},
    {"https-only", "", WX_ERR_INVALID, 0, 0},
    {"https-only", "2", WX_ERR_INVALID, 0, 0},
    {"listen", "", WX_OK, 0, 0},
    {"listen", "0.0.0.0", WX_OK, 0, 0},
    {"nope", "1", WX_ERR_INVALID, 0, 0},
    {"Port", "1", WX_ERR_INVALID, 0, 0},
    {"https_only", "1", WX_ERR_INVALID, 0, 0},
};

static void test_set_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(set_cases); i++) {
        const struct set_case *c = &set_cases[i];
        struct wx_cfg cfg;
        init(&cfg);
        const char *before = wx_cfg_str(&cfg, c->name);
        char saved[64] = "(unset)";
        if (before)
            snprintf(saved, sizeof saved, "%s", before);
        char err[256] = "";
        int rc = wx_cfg_set(&cfg, c->name, c->value, err, sizeof err);
        if (rc != c->rc)
            fail_msg("case %zu %s='%s': rc %d, want %d (%s)", i, c->name, c->value, rc, c->rc, err);
        if (rc == WX_OK) {
            assert_string_equal(wx_cfg_str(&cfg, c->name), c->value);
            for (size_t d = 0; d < NELEM(dirs); d++) {
                if (strcmp(dirs[d].name, c->name) != 0)
                    continue;
                if (dirs[d].type == WX_CFG_INT)
                    assert_int_equal(wx_cfg_int(&cfg, c->name), c->as_int);
                if (dirs[d].type == WX_CFG_BOOL)
                    assert_int_equal(wx_cfg_bool(&cfg, c->name), c->as_bool);
            }
        } else {
            /* The error names the directive and the value stays what it was. */
            assert_non_null(strstr(err, c->name));
            const char *after = wx_cfg_str(&cfg, c->name);
            if (after)
                assert_string_equal(after, saved);
        }
        wx_cfg_free(&cfg);
    }
}

/* ---- sources ---------------------------------------------------------------------------- */

static void test_file(void **state)
{
    (void)state;
    const char *path = temp_file(0, "# wxauth test config\n"
                                    "\n"
                                    "port = 9000\n"
                                    "  workers=8  \n"
                                    "public_url = https://auth.example/x?a=b\n"
                                    "https-only = yes\n"
                                    "   # indented comment\n");
    struct wx_cfg cfg;
    init(&cfg);
    char err[256] = "";
    assert_int_equal(wx_cfg_load_file(&cfg, path, err, sizeof err), WX_OK);
    assert_int_equal(wx_cfg_int(&cfg, "port"), 9000);
    assert_int_equal(wx_cfg_int(&cfg, "workers"), 8);
    assert_string_equal(wx_cfg_str(&cfg, "public-url"), "https://auth.example/x?a=b");
    assert_true(wx_cfg_bool(&cfg, "https-only"));
    assert_string_equal(wx_cfg_str(&cfg, "listen"), "127.0.0.1");
    wx_cfg_free(&cfg);
    unlink(path);
}

struct file_err_case {
    const char *text;
    int rc;
    const char *err_has;
};

static const struct file_err_case file_err_cases[] = {
    {"port = 9000\nnope = 1\n", WX_ERR_INVALID, ":2: unknown setting 'nope'"},
    {"just some words\n", WX_ERR_INVALID, ":1: expected 'name = value'"},
    {"port = 70000\n", WX_ERR_INVALID, ":1: port"},
    {"\n\ndebug = perhaps\n", WX_ERR_INVALID, ":3: debug"},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(file_err_cases); i++) {
        const char *path = temp_file(0, file_err_cases[i].text);
        struct wx_cfg cfg;
        init(&cfg);
        char err[512] = "";
        int rc = wx_cfg_load_file(&cfg, path, err, sizeof err);
        if (rc != file_err_cases[i].rc || !strstr(err, file_err_cases[i].err_has) ||
            !strstr(err, path))
            fail_msg("case %zu: rc %d err \"%s\"", i, rc, err);
        wx_cfg_free(&cfg);
        unlink(path);
    }
    struct wx_cfg cfg;
    init(&cfg);
    char err[512] = "";
    assert_int_equal(wx_cfg_load_file(&cfg, "/nonexistent/wxauth.conf", err, sizeof err),
                     WX_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/wxauth.conf"));
    wx_cfg_free(&cfg);
}

/* A line longer than the reader's line buffer is an error, never silently cut or split. */
static void test_file_long_line(void **state)
{
    (void)state;
    struct wx_buf b;
    wx_buf_init(&b, 1 << 16);
    assert_int_equal(wx_buf_puts(&b, "public-url = https://a.example/"), WX_OK);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(wx_buf_puts(&b, "x"), WX_OK);
    assert_int_equal(wx_buf_puts(&b, "\nport = 1\n"), WX_OK);
    const char *path = temp_file(0, b.ptr);
    wx_buf_free(&b);
    struct wx_cfg cfg;
    init(&cfg);
    char err[512] = "";
    assert_int_not_equal(wx_cfg_load_file(&cfg, path, err, sizeof err), WX_OK);
    assert_non_null(strstr(err, ":1:"));
    assert_null(wx_cfg_str(&cfg, "public-url"));
    wx_cfg_free(&cfg);
    unlink(path);
}

static void test_env(void **state)
{
    (void)state;
    struct wx_cfg cfg;
    init(&cfg);
    setenv("WXAUTH_PORT", "9100", 1);
    setenv("WXAUTH_PUBLIC_URL", "https://env.example", 1);
    setenv("WXAUTH_HTTPS_ONLY", "on", 1);
    char err[256] = "";
    assert_int_equal(wx_cfg_load_env(&cfg, err, sizeof err), WX_OK);
    assert_int_equal(wx_cfg_int(&cfg, "port"), 9100);
    assert_string_equal(wx_cfg_str(&cfg, "public-url"), "https://env.example");
    assert_true(wx_cfg_bool(&cfg, "https-only"));
    assert_int_equal(wx_cfg_int(&cfg, "workers"), 4);
    setenv("WXAUTH_WORKERS", "1000", 1);
    assert_int_equal(wx_cfg_load_env(&cfg, err, sizeof err), WX_ERR_INVALID);
    assert_non_null(strstr(err, "WXAUTH_WORKERS"));
    assert_int_equal(wx_cfg_int(&cfg, "workers"), 4);
    wx_cfg_free(&cfg);
    clear_env();
}

/* ---- flags ------------------------------------------------------------------------------ */

struct args_case {
    const char *argv[8];
    int rc;
    long long port;      /* expected on success */
    int https_only;      /* expected on success */
    int npos;            /* expected on success */
    const char *pos0;    /* first positional after `first` */
    const char *err_has; /* expected on failure */
};

static const struct args_case args_cases[] = {
    {{"wxauth", NULL}, WX_OK, 8080, 0, 0, NULL, NULL},
    {{"wxauth", "--port", "9200", NULL}, WX_OK, 9200, 0, 0, NULL, NULL},
    {{"wxauth", "--port=9201", NULL}, WX_OK, 9201, 0, 0, NULL, NULL},
    {{"wxauth", "--https-only", NULL}, WX_OK, 8080, 1, 0, NULL, NULL},
    {{"wxauth", "--https-only=false", NULL}, WX_OK, 8080, 0, 0, NULL, NULL},
    {{"wxauth", "--https-only=true", "--https-only=no", NULL}, WX_OK, 8080, 0, 0, NULL, NULL},
    {{"wxauth", "serve", "--port", "1", "extra", NULL}, WX_OK, 1, 0, 2, "serve", NULL},
    {{"wxauth", "--https-only", "serve", NULL}, WX_OK, 8080, 1, 1, "serve", NULL},
    {{"wxauth", "--port", "1", "--port", "2", NULL}, WX_OK, 2, 0, 0, NULL, NULL},
    {{"wxauth", "-", NULL}, WX_OK, 8080, 0, 1, "-", NULL},
    {{"wxauth", "--nope", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "unknown option --nope"},
    {{"wxauth", "--nope=1", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "unknown option --nope"},
    {{"wxauth", "--port", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "--port needs a value"},
    {{"wxauth", "--port", "0", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "port"},
    {{"wxauth", "--port=x", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "port"},
    {{"wxauth", "--https-only=maybe", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "https-only"},
    {{"wxauth", "--config", NULL}, WX_ERR_INVALID, 0, 0, 0, NULL, "--config needs a file"},
    {{"wxauth", "--config=/nonexistent/x.conf", NULL},
     WX_ERR_IO,
     0,
     0,
     0,
     NULL,
     "/nonexistent/x.conf"},
};

static void test_args_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(args_cases); i++) {
        const struct args_case *c = &args_cases[i];
        char *argv[8] = {0};
        int argc = 0;
        while (c->argv[argc])
            argc++;
        for (int a = 0; a < argc; a++)
            argv[a] = (char *)c->argv[a];
        struct wx_cfg cfg;
        init(&cfg);
        char err[256] = "";
        int npos = -1;
        int rc = wx_cfg_parse_args(&cfg, argc, argv, 1, &npos, err, sizeof err);
        if (rc != c->rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, c->rc, err);
        if (rc == WX_OK) {
            assert_int_equal(wx_cfg_int(&cfg, "port"), c->port);
            assert_int_equal(wx_cfg_bool(&cfg, "https-only"), c->https_only);
            assert_int_equal(npos, c->npos);
            if (c->pos0)
                assert_string_equal(argv[1], c->pos0);
        } else if (!strstr(err, c->err_has)) {
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, c->err_has);
        }
        wx_cfg_free(&cfg);
    }
}

/* ---- precedence: defaults < file < env < flags ------------------------------------------ */

static const char precedence_file[] = "port = 9000\n"
                                      "workers = 8\n"
                                      "public-url = https://file.example\n"
                                      "listen = 10.0.0.1\n";

static void check_precedence(struct wx_cfg *cfg)
{
    assert_int_equal(wx_cfg_int(cfg, "offset"), 0);                            /* default */
    assert_int_equal(wx_cfg_int(cfg, "workers"), 8);                           /* file */
    assert_string_equal(wx_cfg_str(cfg, "public-url"), "https://env.example"); /* env > file */
    assert_string_equal(wx_cfg_str(cfg, "listen"), "10.0.0.2");                /* env > file */
    assert_int_equal(wx_cfg_int(cfg, "port"), 9200);                           /* flag > all */
}

static void test_precedence_env_config(void **state)
{
    (void)state;
    const char *path = temp_file(1, precedence_file);
    setenv("WXAUTH_CONFIG", path, 1);
    setenv("WXAUTH_PUBLIC_URL", "https://env.example", 1);
    setenv("WXAUTH_LISTEN", "10.0.0.2", 1);
    setenv("WXAUTH_PORT", "9100", 1);
    char *argv[] = {"wxauth", "--port", "9200", NULL};
    struct wx_cfg cfg;
    init(&cfg);
    char err[256] = "";
    int npos = -1;
    assert_int_equal(wx_cfg_load_all(&cfg, 3, argv, 1, &npos, err, sizeof err), WX_OK);
    check_precedence(&cfg);
    assert_int_equal(npos, 0);
    wx_cfg_free(&cfg);
    clear_env();
    unlink(path);
}

/* --config FILE is still the file layer: the environment and every flag override it. */
static void test_precedence_flag_config(void **state)
{
    (void)state;
    const char *path = temp_file(1, precedence_file);
    setenv("WXAUTH_PUBLIC_URL", "https://env.example", 1);
    setenv("WXAUTH_LISTEN", "10.0.0.2", 1);
    setenv("WXAUTH_PORT", "9100", 1);
    char cfgarg[128];
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", path);
    char *forms[][6] = {
        {"wxauth", "--config", (char *)path, "--port", "9200", NULL},
        {"wxauth", "--port", "9200", "--config", (char *)path, NULL},
        {"wxauth", "--port=9200", cfgarg, "run", NULL, NULL},
    };
    static const int argcs[] = {5, 5, 4};
    for (size_t f = 0; f < NELEM(forms); f++) {
        struct wx_cfg cfg;
        init(&cfg);
        char err[256] = "";
        int npos = -1;
        int rc = wx_cfg_load_all(&cfg, argcs[f], forms[f], 1, &npos, err, sizeof err);
        if (rc != WX_OK)
            fail_msg("form %zu: rc %d (%s)", f, rc, err);
        check_precedence(&cfg);
        assert_int_equal(npos, f == 2 ? 1 : 0);
        if (f == 2)
            assert_string_equal(forms[f][1], "run");
        wx_cfg_free(&cfg);
    }
    /* --config wins over WXAUTH_CONFIG (a flag beats the environment). */
    const char *other = temp_file(2, "workers = 2\nport = 1\n");
    setenv("WXAUTH_CONFIG", other, 1);
    char *argv[] = {"wxauth", "--config", (char *)path, NULL};
    struct wx_cfg cfg;
    init(&cfg);
    char err[256] = "";
    int npos = -1;
    assert_int_equal(wx_cfg_load_all(&cfg, 3, argv, 1, &npos, err, sizeof err), WX_OK);
    assert_int_equal(wx_cfg_int(&cfg, "workers"), 8);
    assert_int_equal(wx_cfg_int(&cfg, "port"), 9100);
    wx_cfg_free(&cfg);
    /* Errors in the --config file are reported as such. */
    const char *bad = temp_file(3, "port = 0\n");
    char *argv2[] = {"wxauth", "--config", (char *)bad, NULL};
    init(&cfg);
    assert_int_equal(wx_cfg_load_all(&cfg, 3, argv2, 1, &npos, err, sizeof err), WX_ERR_INVALID);
    assert_non_null(strstr(err, bad));
    wx_cfg_free(&cfg);
    clear_env();
    unlink(path);
    unlink(other);
    unlink(bad);
}

static void test_help(void **state)
{
    (void)state;
    struct wx_cfg cfg;
    init(&cfg);
    struct wx_buf b;
    wx_buf_init(&b, 8192);
    assert_int_equal(wx_cfg_help(&cfg, &b), WX_OK);
    assert_non_null(strstr(b.ptr, "--port N"));
    assert_non_null(strstr(b.ptr, "TCP port (default 8080)"));
    assert_non_null(strstr(b.ptr, "--listen VALUE"));
    assert_non_null(strstr(b.ptr, "--https-only "));
    assert_null(strstr(b.ptr, "--https-only VALUE"));
    assert_null(strstr(b.ptr, "(default false)"));
    wx_buf_free(&b);
    wx_cfg_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_table),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_long_line),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_args_table),
        cmocka_unit_test(test_precedence_env_config),
        cmocka_unit_test(test_precedence_flag_config),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
