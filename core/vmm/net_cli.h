/*
 * The networking options of `crosvm run`: --net with crosvm's sub-options (tap-name=, tap-fd=,
 * host-ip=/netmask=/mac=, vhost-net, vq-pairs=, mrg_rxbuf=) and our `user` mode (hostfwd=,
 * dns), and crosvm's deprecated --tap-name, --tap-fd, --host-ip (--host_ip), --netmask, --mac,
 * --vhost-net, --net-vq-pairs.
 */
#ifndef CROSVM_CORE_VMM_NET_CLI_H
#define CROSVM_CORE_VMM_NET_CLI_H

#include "core/vmm/config.h"

struct logger;

/* One --net value: a new device at the end of cfg->nets. -EINVAL with a message. */
int cli_parse_net(const char *s, struct vm_config *cfg, const struct logger *lg);
/* A deprecated option by its long name ("tap-name", "host_ip", "vhost-net" ...). */
int cli_net_legacy_option(const char *name, const char *arg, struct vm_config *cfg,
			  const struct logger *lg);
/*
 * After all options: the deprecated ones become devices after the --net ones (host-ip, then
 * each --tap-name, then each --tap-fd), and, as crosvm, a device with more queue pairs than
 * vCPUs falls back to one pair.
 */
int cli_net_finalize(struct vm_config *cfg, const struct logger *lg);

#endif
