/* commands.h — the subcommands main.c dispatches to. argc/argv start at the subcommand's name;
 * each returns the exit status. */
#ifndef NONO_CLI_COMMANDS_H
#define NONO_CLI_COMMANDS_H

int cmd_run(int argc, char **argv);   /* run.c */
int cmd_why(int argc, char **argv);   /* why.c */
int cmd_proxy(int argc, char **argv); /* proxy_cmd.c */
int cmd_setup(int argc, char **argv); /* setup.c */
int cmd_profile(int argc, char **argv); /* profile_cmd.c */
int cmd_rollback(int argc, char **argv); /* rollback.c */
int cmd_audit(int argc, char **argv); /* audit_cmd.c */

#endif
