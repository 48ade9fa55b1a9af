/*
 * test_client_tls.c — the client over HTTPS with a test CA. At test time it makes (with the
 * openssl command, $WXAUTH_OPENSSL) a CA, a server certificate for api.weixin.qq.com signed by
 * it, and an unrelated second CA; starts tests/unit/tls_stub.js under node ($WXAUTH_NODE) on a
 * free loopback port; and points the client at the real https://api.weixin.qq.com through
 * wx_client_config.connect_to. Checks: the pinned test CA verifies; another CA, the system store,
 * a missing CA file or a host name the certificate does not carry fail with WX_ERR_IO and a TLS
 * message; and the transport refusals the real provider never triggers (a userinfo for another
 * openid, an oversized or HTML body, HTTP 500, a redirect). Exits 77 (skipped) without node or
 * openssl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "child.h"

static struct {
    const char *node, *openssl, *stub;
    char dir[256], ca[300], other_ca[300], cert[300], key[300], out[300];
    int port;
    char connect_to[128];
} g;

/* Runs argv quietly; 0 when it exits 0. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int make_ca(const char *name, const char *cn)
{
    char key[320], pem[320], subj[128];
    snprintf(key, sizeof key, "%s/%s.key", g.dir, name);
    snprintf(pem, sizeof pem, "%s/%s.pem", g.dir, name);
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    char *argv[] = {(char *)g.openssl,
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    pem,
                    "-days",
                    "2",
                    "-subj",
                    subj,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    NULL};
    return run(argv);
}

static int make_certs(void)
{
    char csr[320], cakey[320], ext[320], serial[320];
    snprintf(g.ca, sizeof g.ca, "%s/ca.pem", g.dir);
    snprintf(g.other_ca, sizeof g.other_ca, "%s/other.pem", g.dir);
    snprintf(g.cert, sizeof g.cert, "%s/server.pem", g.dir);
    snprintf(g.key, sizeof g.key, "%s/server.key", g.dir);
    snprintf(csr, sizeof csr, "%s/server.csr", g.dir);
    snprintf(cakey, sizeof cakey, "%s/ca.key", g.dir);
    snprintf(ext, sizeof ext, "%s/server.ext", g.dir);
    snprintf(serial, sizeof serial, "%s/ca.srl", g.dir);
    if (make_ca("ca", "wxauth test CA") || make_ca("other", "wxauth other CA"))
        return -1;
    FILE *f = fopen(ext, "w");
    if (!f)
        return -1;
    fputs("subjectAltName=DNS:api.weixin.qq.com\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
          f);
    fclose(f);
    char *req[] = {(char *)g.openssl,
                   "req",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-keyout",
                   g.key,
                   "-out",
                   csr,
                   "-subj",
                   "/CN=api.weixin.qq.com",
                   NULL};
    char *sign[] = {(char *)g.openssl,
                    "x509",
                    "-req",
                    "-in",
                    csr,
                    "-CA",
                    g.ca,
                    "-CAkey",
                    cakey,
                    "-CAcreateserial",
                    "-CAserial",
                    serial,
                    "-out",
                    g.cert,
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                    NULL};
    return run(req) || run(sign) ? -1 : 0;
}

static int start_stub(void)
{
    snprintf(g.out, sizeof g.out, "%s/stub.out", g.dir);
    child_pid = fork();
    if (child_pid < 0)
        return -1;
    if (child_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(g.out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        execl(g.node, g.node, g.stub, g.cert, g.key, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        char buf[256] = "";
        FILE *f = fopen(g.out, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        const char *m = strstr(buf, "listening ");
        if (m && strchr(m, '\n')) {
            g.port = (int)strtol(m + 10, NULL, 10);
            return g.port > 0 ? 0 : -1;
        }
        if (waitpid(child_pid, NULL, WNOHANG) == child_pid) {
            child_pid = 0;
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (wx_init())
        return -1;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g.dir, sizeof g.dir, "%s/wxauth-client-tls-XXXXXX", tmp);
    if (!mkdtemp(g.dir))
        return -1;
    if (make_certs()) {
        fprintf(stderr, "openssl could not make the test certificates\n");
        return -1;
    }
    child_guard();
    if (start_stub()) {
        fprintf(stderr, "the TLS stub did not start\n");
        child_stop();
        return -1;
    }
    snprintf(g.connect_to, sizeof g.connect_to, "api.weixin.qq.com:443:127.0.0.1:%d", g.port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    child_stop();
    char *rm[] = {"/bin/rm", "-rf", g.dir, NULL};
    run(rm);
    return 0;
}

/* A client for the default https://api.weixin.qq.com, connected to the stub. */
static struct wx_client *client(const char *ca_file, const char *api_base, const char *connect_to)
{
    struct wx_client_config cfg = {0};
    struct wx_client *c = NULL;
    struct wx_error err = {0};
    cfg.appid = "wx520c15f417810387";
    cfg.secret = "0123456789abcdef0123456789abcdef";
    cfg.api_base = api_base;
    cfg.ca_file = ca_file;
    cfg.connect_to = connect_to ? connect_to : g.connect_to;
    cfg.max_retries = -1;
    cfg.timeout_ms = 5000;
    assert_int_equal(wx_client_new(&cfg, &c, &err), WX_OK);
    return c;
}

static void test_pinned_ca_verifies(void **state)
{
    (void)state;
    struct wx_client *c = client(g.ca, NULL, NULL);
    struct wx_token t;
    struct wx_error err = {0};
    assert_int_equal(wx_exchange_code(c, "021YtV1V08FYm22w9uZU0QxT1V0YtV1n", &t, &err), WX_OK);
    assert_string_equal(t.openid, "ojHK1v9VKtd2r7BrUqRSGnymyH_Q");
    assert_string_equal(t.unionid, "oLDegwLanAyzhdUfaBqh6Dt4MqtY");
    assert_int_equal(t.is_snapshotuser, 1);
    assert_int_equal(t.expires_in, 7200);
    assert_int_equal(wx_check_token(c, "ok", t.openid, &err), WX_OK);
    wx_client_free(c);
}

struct tls_fail_case {
    const char *name;
    int ca; /* 0: none (system store), 1: the other CA, 2: a missing file, 3: the test CA */
    const char *api_base, *connect_host;
};

static void test_tls_failures(void **state)
{
    (void)state;
    const struct tls_fail_case cases[] = {
        {"another CA", 1, NULL, NULL},
        {"the system store", 0, NULL, NULL},
        {"a missing CA file", 2, NULL, NULL},
        {"a host name not in the certificate", 3, "https://api2.weixin.qq.com",
         "api2.weixin.qq.com"},
        {"an IP address not in the certificate", 3, "https://127.0.0.1", "127.0.0.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tls_fail_case *k = &cases[i];
        char ct[160], missing[320];
        const char *ca = NULL;
        snprintf(missing, sizeof missing, "%s/none.pem", g.dir);
        ca = k->ca == 1 ? g.other_ca : k->ca == 2 ? missing : k->ca == 3 ? g.ca : NULL;
        if (k->connect_host)
            snprintf(ct, sizeof ct, "%s:443:127.0.0.1:%d", k->connect_host, g.port);
        print_message("case %zu: %s\n", i, k->name);
        struct wx_client *c = client(ca, k->api_base, k->connect_host ? ct : NULL);
        struct wx_token t;
        struct wx_error err = {0};
        assert_int_equal(wx_exchange_code(c, "021YtV1V08FYm22w9uZU0QxT1V0YtV1n", &t, &err),
                         WX_ERR_IO);
        assert_int_equal(err.errcode, -1);
        assert_string_equal(t.access_token, "");
        if (!strstr(err.errmsg, "SSL") && !strstr(err.errmsg, "certificate") &&
            !strstr(err.errmsg, "CA"))
            fail_msg("not a TLS error: %s", err.errmsg);
        print_message("  -> %s\n", err.errmsg);
        wx_client_free(c);
    }
}

struct transport_case {
    const char *name;
    const char *access_token;
    const char *want;
};

static void test_transport_refusals(void **state)
{
    (void)state;
    const struct transport_case cases[] = {
        {"body over WX_MAX_JSON_RESP", "big", "larger than"},
        {"HTML body", "html", "HTML"},
        {"HTTP 500", "status500", "HTTP status 500"},
        {"redirect not followed", "redirect", "HTTP status 302"},
    };
    struct wx_client *c = client(g.ca, NULL, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wx_error err = {0};
        print_message("case %zu: %s\n", i, cases[i].name);
        assert_int_equal(wx_check_token(c, cases[i].access_token, "o1", &err), WX_ERR_IO);
        assert_int_equal(err.errcode, -1);
        if (!strstr(err.errmsg, cases[i].want))
            fail_msg("\"%s\" lacks \"%s\"", err.errmsg, cases[i].want);
    }
    wx_client_free(c);
}

/* The stub answers every userinfo with someone else's profile: wx_get_userinfo refuses it. */
static void test_userinfo_other_openid(void **state)
{
    (void)state;
    struct wx_client *c = client(g.ca, NULL, NULL);
    struct wx_userinfo u;
    struct wx_error err = {0};
    assert_int_equal(wx_get_userinfo(c, "tok", "ojHK1v9VKtd2r7BrUqRSGnymyH_Q", NULL, &u, &err),
                     WX_ERR_IO);
    assert_non_null(strstr(err.errmsg, "another openid"));
    assert_string_equal(u.openid, "");
    assert_string_equal(u.nickname, "");
    wx_client_free(c);
}

int main(void)
{
    const char *node = getenv("WXAUTH_NODE"), *openssl = getenv("WXAUTH_OPENSSL");
    g.stub = getenv("WXAUTH_TLS_STUB");
    if (!node || !*node || access(node, X_OK) || !openssl || !*openssl || access(openssl, X_OK) ||
        !g.stub || access(g.stub, R_OK)) {
        fprintf(stderr, "skipped: needs WXAUTH_NODE, WXAUTH_OPENSSL and WXAUTH_TLS_STUB\n");
        return 77;
    }
    g.node = node;
    g.openssl = openssl;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_ca_verifies),
        cmocka_unit_test(test_tls_failures),
        cmocka_unit_test(test_transport_refusals),
        cmocka_unit_test(test_userinfo_other_openid),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
