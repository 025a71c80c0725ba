/* `--gdb PORT` (crosvm's syntax): the TCP port on 127.0.0.1 the guest's debugger connects to. */
#include "core/vmm/cli.h"
#include "core/log.h"

int cli_parse_gdb(const char *arg, struct vm_config *cfg, const struct logger *lg)
{
	uint64_t port;

	if (parse_u64(arg, &port) < 0 || port == 0 || port > 65535) {
		log_err(lg, "--gdb: '%s' is not a TCP port (1 to 65535)", arg);
		return -EINVAL;
	}
	cfg->gdb_port = (uint16_t)port;
	return 0;
}
