/* Command-line parsing of `crosvm run` into a struct vm_config. */
#ifndef CROSVM_CORE_VMM_CLI_H
#define CROSVM_CORE_VMM_CLI_H

#include <stdio.h>
#include "core/vmm/config.h"

struct logger;

#define CLI_HELP 1 /* parse returned after printing help: exit 0 */

/* argv[0] is "run". Returns 0, CLI_HELP, or -EINVAL after printing what was wrong. */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg, const struct logger *lg);
/* Checks option combinations and fills defaults (serial ports, ...); -EINVAL with a message. */
int cli_finalize(struct vm_config *cfg, const struct logger *lg);
void cli_run_usage(FILE *f);

/* Individual parsers, exposed for unit tests. */
int cli_parse_serial(const char *s, struct vm_config *cfg, const struct logger *lg);
int cli_parse_block(const char *s, struct vm_config *cfg, const struct logger *lg);
int cli_parse_mem(const char *s, uint64_t *mib);
int cli_parse_cpus(const char *s, unsigned *n);
/* core/vmm/cli_gdb.c */
int cli_parse_gdb(const char *arg, struct vm_config *cfg, const struct logger *lg);

#endif
