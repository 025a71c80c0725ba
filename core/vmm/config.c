#include "core/vmm/config.h"
#include "core/vmm/cli_shared_dir.h"

#include <stdlib.h>
#include <string.h>

void config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mem_mib = CONFIG_DEFAULT_MEM_MIB;
	c->cpus = 1;
}

void config_free(struct vm_config *c)
{
	free(c->kernel);
	free(c->initrd);
	free(c->params);
	for (unsigned i = 0; i < CONFIG_MAX_SERIAL; i++)
		free(c->serial[i].path);
	for (unsigned i = 0; i < c->nr_vconsoles; i++)
		free(c->vconsole[i].s.path);
	free(c->vsock.device);
	free(c->vsock.uds_path);
	for (unsigned i = 0; i < c->nr_disks; i++)
		free(c->disks[i].path);
	for (unsigned i = 0; i < c->nr_nets; i++) {
		free(c->nets[i].tap_name);
		free(c->nets[i].vhost_device);
	}
	free(c->net_legacy.host_ip);
	free(c->net_legacy.netmask);
	free(c->net_legacy.mac);
	for (unsigned i = 0; i < c->net_legacy.nr_tap_names; i++)
		free(c->net_legacy.tap_names[i]);
	for (unsigned i = 0; i < c->nr_shared_dirs; i++)
		cli_shared_dir_free(&c->shared_dirs[i]);
	free(c->dump_dtb);
	free(c->dump_acpi);
	free(c->socket_path);
	free(c->seccomp_policy_dir);
	free(c->pivot_root);
	free(c->kvm_device);
	free(c->test_seccomp_violation);
	memset(c, 0, sizeof(*c));
}
