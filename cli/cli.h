/*
 * cli.h — the subcommands of the wxauth binary.
 */
#ifndef WX_CLI_H
#define WX_CLI_H

int wx_cmd_app(int argc, char **argv);
int wx_cmd_user(int argc, char **argv);
/* url, exchange, refresh, userinfo, check, basic-token, explain (argv[0] is the command). */
int wx_cmd_client(int argc, char **argv);

#endif
