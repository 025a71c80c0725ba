/*
 * Command-line parsing for host-guest channels: --vsock, --cid and the virtio-console form
 * of --serial (kept out of cli.c so that each device's options stay in one place).
 */
#ifndef CROSVM_CORE_VMM_CLI_DEVICES_H
#define CROSVM_CORE_VMM_CLI_DEVICES_H

#include "core/vmm/config.h"

struct logger;

/* --vsock cid=N[,device=PATH] | cid=N,uds-path=PATH (a bare N is the cid). */
int cli_parse_vsock(const char *s, struct vm_config *cfg, const struct logger *lg);
/* --cid N: crosvm's older form of --vsock cid=N. */
int cli_parse_cid(const char *s, struct vm_config *cfg, const struct logger *lg);
/* A parsed --serial ...,hardware=virtio-console (takes sc->path on success). */
int cli_add_vconsole(struct vm_config *cfg, unsigned num, struct serial_config *sc,
		     const struct logger *lg);

#endif
