/*
 * cli.h — the subcommands of the wxauth binary.
 */
#ifndef WX_CLI_H
#define WX_CLI_H

#include <jansson.h>

int wx_cmd_app(int argc, char **argv);
int wx_cmd_user(int argc, char **argv);
/* url, exchange, refresh, userinfo, check, basic-token, explain (argv[0] is the command). */
int wx_cmd_client(int argc, char **argv);

/* `wxauth oidc client|key ...`: the OpenID Connect clients and signing keys in a store. */
int wx_cmd_oidc(int argc, char **argv);

/* ---- what the admin commands share (cmd_admin.c) ---- */
struct wx_store;
struct wx_keys;
/* Opens the store db names (a file or a store URL) and derives its keys: 0, or the exit code
 * after a message on stderr (2: no db given, 1: it cannot be opened). */
int wx_cli_open_store(const char *db, struct wx_store **s, struct wx_keys *k);
/* Closes it; after a change, waits until every running server sees the change. */
void wx_cli_close_store(struct wx_store *s, int changed);
/* Prints j indented and releases it. */
void wx_cli_print_json(json_t *j);

#endif
