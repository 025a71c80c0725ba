/* The control subcommands (`crosvm stop SOCKET`, ...): one request, print the reply. */
#ifndef CROSVM_CONTROL_CLIENT_H
#define CROSVM_CONTROL_CLIENT_H

struct logger;

/* argv[0] is the command. Returns 0 on success, -ENOENT for an unknown command, or another
 * -errno after printing the error. */
int control_client_main(int argc, char **argv, const struct logger *lg);

#endif
