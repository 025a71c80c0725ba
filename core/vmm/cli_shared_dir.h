/*
 * crosvm's --shared-dir PATH:TAG[:KEY=VALUE]... : fields separated by ':', PATH and TAG
 * first, then in any order type=fs|p9 (crosvm's default is p9), cache=never|auto|always,
 * timeout=SECONDS, negative_timeout=SECONDS, writeback=BOOL, uidmap=MAP, gidmap=MAP, where a
 * MAP is "inner outer count[,inner outer count]..." (the device's user namespace, crosvm's
 * default "0 <euid> 1"). Only type=fs is built; type=p9 and crosvm's other keys are refused
 * by name.
 */
#ifndef CROSVM_CORE_VMM_CLI_SHARED_DIR_H
#define CROSVM_CORE_VMM_CLI_SHARED_DIR_H

#include "core/vmm/config.h"

struct logger;

/* Parses one --shared-dir into the next of cfg->shared_dirs; -EINVAL after saying why. */
int cli_parse_shared_dir(const char *s, struct vm_config *cfg, const struct logger *lg);
/*
 * A uid/gid map as crosvm writes it ("0 1000 1,1000 2000 10") into /proc/PID/uid_map's form
 * (one "inner outer count" line per entry), in *out (malloc'd). Ranges must not overlap on
 * either side, as the kernel requires. -EINVAL for anything else.
 */
int cli_parse_id_map(const char *s, char **out);
void cli_shared_dir_free(struct fs_config *d);

#endif
