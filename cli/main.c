/*
 * main.c — the wxauth binary: dispatches to the provider and the admin subcommands.
 */
#include <stdio.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "cli.h"
#include "gate.h"
#include "provider.h"

static void usage(FILE *f)
{
    fprintf(f,
            "wxauth %s — WeChat web authorization (微信网页授权, OAuth 2.0) done right\n\n"
            "Usage: wxauth COMMAND [OPTIONS]\n\n"
            "Commands:\n"
            "  provider        run the WeChat-compatible authorization server (sandbox)\n"
            "  gate            WeChat login in front of any app (nginx auth_request)\n"
            "  app add|list|show|set|rm|reset-secret\n"
            "                  manage the Official Accounts (apps) in a provider database\n"
            "  user add|list|follow|snapshot\n"
            "                  manage the provider's test users\n"
            "  oidc client add|list|show|rm|reset-secret, oidc key list|rotate\n"
            "                  the clients and keys of the gate's OpenID Connect provider\n"
            "  url             print an authorize URL (canonical order, encoded once)\n"
            "  exchange CODE   trade a code for the web access_token and openid\n"
            "  refresh TOKEN   refresh a web access_token\n"
            "  userinfo TOKEN OPENID, check TOKEN OPENID, basic-token\n"
            "                  call WeChat's APIs (or a provider: --api-base)\n"
            "  explain ERRCODE what a WeChat errcode means and how to fix it\n"
            "  version         print the version\n\n"
            "Run 'wxauth COMMAND --help' for a command's options.\n"
            "Settings also come from WXAUTH_<NAME> variables (e.g. WXAUTH_DB) and --config FILE.\n",
            WXAUTH_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "provider"))
        return wx_provider_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "gate"))
        return wx_gate_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "app"))
        return wx_cmd_app(argc - 1, argv + 1);
    if (!strcmp(cmd, "user"))
        return wx_cmd_user(argc - 1, argv + 1);
    if (!strcmp(cmd, "oidc"))
        return wx_cmd_oidc(argc - 1, argv + 1);
    static const char *const client_cmds[] = {"url",   "exchange", "refresh",    "userinfo",
                                              "check", "explain",  "basic-token"};
    for (size_t i = 0; i < sizeof client_cmds / sizeof client_cmds[0]; i++)
        if (!strcmp(cmd, client_cmds[i]))
            return wx_cmd_client(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("wxauth %s\n", WXAUTH_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "wxauth: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
