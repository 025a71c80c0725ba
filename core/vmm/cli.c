/*
 * `crosvm run` options, with crosvm's names, defaults and sub-option syntax. Options this
 * build does not implement are recognised and refused by name, so a crosvm command line
 * never half-works silently.
 */
#include "core/vmm/cli.h"
#include "core/vmm/cli_devices.h"
#include "core/vmm/cli_shared_dir.h"
#include "core/vmm/kvlist.h"
#include "core/vmm/net_cli.h"
#include "core/log.h"
#include "core/util.h"
#include "virtio/blk.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_SERIAL = 0x100,
	OPT_DISABLE_SANDBOX,
	OPT_NO_I8042,
	OPT_NO_RTC,
	OPT_NO_RNG,
	OPT_NO_BALLOON,
	OPT_DUMP_DTB,
	OPT_DUMP_ACPI,
	OPT_RWROOT,
	OPT_RWDISK,
	OPT_SECCOMP_DIR,
	OPT_SECCOMP_LOG,
	OPT_PIVOT_ROOT,
	OPT_BOOT_PROTOCOL,
	OPT_HYPERVISOR,
	OPT_KVM_DEVICE,
	OPT_TEST_VIOLATION,
	OPT_GDB,
	OPT_VSOCK,
	OPT_CID,
	OPT_NET,
	OPT_NET_LEGACY,
	OPT_SHARED_DIR,
	OPT_UNSUPPORTED,
};

static const struct option run_options[] = {
	{"mem", required_argument, NULL, 'm'},
	{"cpus", required_argument, NULL, 'c'},
	{"initrd", required_argument, NULL, 'i'},
	{"params", required_argument, NULL, 'p'},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"disable-sandbox", no_argument, NULL, OPT_DISABLE_SANDBOX},
	{"no-i8042", no_argument, NULL, OPT_NO_I8042},
	{"no-rtc", no_argument, NULL, OPT_NO_RTC},
	{"no-rng", no_argument, NULL, OPT_NO_RNG},
	{"no-balloon", no_argument, NULL, OPT_NO_BALLOON},
	{"dump-device-tree-blob", required_argument, NULL, OPT_DUMP_DTB},
	{"dump-acpi", required_argument, NULL, OPT_DUMP_ACPI},
	{"block", required_argument, NULL, 'b'},
	{"root", required_argument, NULL, 'r'},
	{"rwroot", required_argument, NULL, OPT_RWROOT},
	{"disk", required_argument, NULL, 'd'},
	{"rwdisk", required_argument, NULL, OPT_RWDISK},
	{"socket", required_argument, NULL, 's'},
	{"seccomp-policy-dir", required_argument, NULL, OPT_SECCOMP_DIR},
	{"seccomp-log-failures", no_argument, NULL, OPT_SECCOMP_LOG},
	{"pivot-root", required_argument, NULL, OPT_PIVOT_ROOT},
	{"boot-protocol", required_argument, NULL, OPT_BOOT_PROTOCOL},
	{"hypervisor", required_argument, NULL, OPT_HYPERVISOR},
	{"kvm-device", required_argument, NULL, OPT_KVM_DEVICE},
	{"gdb", required_argument, NULL, OPT_GDB},
	{"vsock", required_argument, NULL, OPT_VSOCK},
	{"cid", required_argument, NULL, OPT_CID},
	{"net", required_argument, NULL, OPT_NET},
	/* crosvm's deprecated networking options (core/vmm/net_cli.c). */
	{"tap-name", required_argument, NULL, OPT_NET_LEGACY},
	{"tap-fd", required_argument, NULL, OPT_NET_LEGACY},
	{"host-ip", required_argument, NULL, OPT_NET_LEGACY},
	{"host_ip", required_argument, NULL, OPT_NET_LEGACY},
	{"netmask", required_argument, NULL, OPT_NET_LEGACY},
	{"mac", required_argument, NULL, OPT_NET_LEGACY},
	{"vhost-net", no_argument, NULL, OPT_NET_LEGACY},
	{"net-vq-pairs", required_argument, NULL, OPT_NET_LEGACY},
	{"shared-dir", required_argument, NULL, OPT_SHARED_DIR},
#ifdef CROSVM_TEST_HOOKS
	{"test-seccomp-violation", required_argument, NULL, OPT_TEST_VIOLATION},
#endif
	{"help", no_argument, NULL, 'h'},
	/* crosvm options this build does not implement: refused by name. */
	{"bios", required_argument, NULL, OPT_UNSUPPORTED},
	{"pmem", required_argument, NULL, OPT_UNSUPPORTED},
	{"gpu", optional_argument, NULL, OPT_UNSUPPORTED},
	{"vfio", required_argument, NULL, OPT_UNSUPPORTED},
	{"vhost-user", required_argument, NULL, OPT_UNSUPPORTED},
	{"hugepages", no_argument, NULL, OPT_UNSUPPORTED},
	{"restore", required_argument, NULL, OPT_UNSUPPORTED},
	{"suspended", no_argument, NULL, OPT_UNSUPPORTED},
	{"protected-vm", no_argument, NULL, OPT_UNSUPPORTED},
	{"irqchip", required_argument, NULL, OPT_UNSUPPORTED},
	{"split-irqchip", no_argument, NULL, OPT_UNSUPPORTED},
	{NULL, 0, NULL, 0},
};

void cli_run_usage(FILE *f)
{
	fprintf(f,
		"Usage: crosvm [GLOBAL OPTIONS] run [OPTIONS] KERNEL\n"
		"\n"
		"Start a new VM that boots KERNEL (an ELF vmlinux, a bzImage, or a PVH ELF).\n"
		"\n"
		"Options:\n"
		"  -m, --mem [size=]MIB        guest memory in MiB (default 256)\n"
		"  -c, --cpus [num-cores=]N    number of vCPUs (default 1)\n"
		"  -i, --initrd PATH           initial ramdisk\n"
		"  -p, --params TEXT           extra kernel command line (repeatable)\n"
		"  --serial type=T[,hardware=H][,num=N][,path=P][,console][,stdin][,earlycon]\n"
		"                              configure COM1-COM4 (T: stdout, file, sink, "
		"syslog);\n"
		"                              default: COM1 = stdout + stdin + console;\n"
		"                              hardware=virtio-console: a virtio console hvc<N-1>\n"
		"  -b, --block "
		"[path=]P[,ro][,root][,sparse=B][,direct=B][,lock=B][,block-size=N][,id=S]\n"
		"                              [,num-queues=N][,async-executor=uring|epoll]\n"
		"                              virtio-blk disk (repeatable, vda, vdb... in order)\n"
		"  -r, --root PATH             read-only root disk (deprecated: --block "
		"P,ro,root)\n"
		"  --rwroot PATH               writable root disk (deprecated: --block P,root)\n"
		"  -d, --disk PATH             read-only disk (deprecated: --block P,ro)\n"
		"  --rwdisk PATH               writable disk (deprecated: --block P)\n"
		"  --vsock cid=N[,device=PATH]  virtio-vsock on the kernel's vhost-vsock (default\n"
		"                              /dev/vhost-vsock); --cid N is the older form\n"
		"  --vsock cid=N,uds-path=PATH  virtio-vsock in user space: guest connections go\n"
		"                              to UNIX sockets PATH_<port>, host programs connect\n"
		"                              to PATH and write \"CONNECT <port>\\n\"\n"
		"  --net tap-name=NAME|tap-fd=N|host-ip=IP,netmask=MASK,mac=MAC|user\n"
		"        [,mac=MAC][,vhost-net[=[device=PATH]]][,vq-pairs=N][,mrg_rxbuf=B]\n"
		"        [,hostfwd=tcp:HOSTPORT-:GUESTPORT][,dns]\n"
		"                              virtio-net device (repeatable): a TAP by name or\n"
		"                              fd, a new TAP with an address (needs "
		"CAP_NET_ADMIN),\n"
		"                              or user-mode networking (no privileges; DHCP, "
		"ports\n"
		"                              forwarded from 127.0.0.1, DNS forwarding with dns)\n"
		"  --tap-name NAME, --tap-fd N, --host-ip IP --netmask MASK --mac MAC, "
		"--vhost-net,\n"
		"  --net-vq-pairs N            deprecated forms of --net\n"
		"  --shared-dir PATH:TAG:type=fs[:cache=never|auto|always][:timeout=S]\n"
		"              [:writeback=B][:uidmap=MAP][:gidmap=MAP]\n"
		"                              share host directory PATH over virtio-fs as TAG\n"
		"                              (repeatable; type=p9 is not supported)\n"
		"  --no-rng                    no virtio-rng device (on by default)\n"
		"  --no-balloon                no virtio-balloon device (on by default)\n"
		"  --no-i8042                  no i8042 (reset-only keyboard controller)\n"
		"  --no-rtc                    no CMOS/RTC\n"
		"  -s, --socket PATH           control socket (a directory gets "
		"crosvm-<pid>.sock)\n"
		"  --disable-sandbox           run every device in the main process, unjailed\n"
		"  --seccomp-policy-dir DIR    load seccomp policies from DIR instead of the "
		"built-in\n"
		"  --seccomp-log-failures      log seccomp violations instead of killing the "
		"device\n"
		"  --pivot-root DIR            empty directory device processes pivot into\n"
		"                              (default /var/empty)\n"
		"  --dump-device-tree-blob PATH  write the device tree passed in setup_data to "
		"PATH\n"
		"  --dump-acpi DIR             write the generated ACPI tables to DIR\n"
		"  --boot-protocol auto|linux|pvh  how to enter an ELF kernel (default auto: PVH "
		"if\n"
		"                              the ELF has a PVH note, else the 64-bit entry)\n"
		"  --hypervisor kvm[device=PATH]   KVM device node (default /dev/kvm)\n"
		"  --gdb PORT                  wait for gdb on 127.0.0.1:PORT before the guest "
		"starts\n"
		"  -h, --help                  show this help\n");
}

int cli_parse_mem(const char *s, uint64_t *mib)
{
	uint64_t v;

	if (strncmp(s, "size=", 5) == 0)
		s += 5;
	if (parse_u64(s, &v) < 0)
		return -EINVAL;
	/* Guest RAM in bytes must fit in 64 bits with room for the 4 GiB hole. */
	if (v == 0 || v > (1ull << 40))
		return -ERANGE;
	*mib = v;
	return 0;
}

int cli_parse_cpus(const char *s, unsigned *n)
{
	uint64_t v;

	if (strncmp(s, "num-cores=", 10) == 0)
		s += 10;
	if (parse_u64(s, &v) < 0)
		return -EINVAL;
	if (v == 0 || v > 4096)
		return -ERANGE;
	*n = (unsigned)v;
	return 0;
}

static const char *const serial_flags[] = {"console", "stdin", "earlycon", NULL};

int cli_parse_serial(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct serial_config sc = {.type = SERIAL_CFG_SINK};
	bool have_type = false, virtio = false;
	uint64_t num = 1;
	struct kvlist l;
	int ret;

	ret = kvlist_parse(&l, s, NULL, serial_flags);
	if (ret < 0) {
		log_err(lg, "--serial: cannot parse '%s'", s);
		return -EINVAL;
	}
	for (unsigned i = 0; i < l.nr; i++) {
		const struct kv_item *it = &l.items[i];
		bool b;

		if (strcmp(it->key, "type") == 0 && it->value) {
			have_type = true;
			if (strcmp(it->value, "stdout") == 0)
				sc.type = SERIAL_CFG_STDOUT;
			else if (strcmp(it->value, "file") == 0)
				sc.type = SERIAL_CFG_FILE;
			else if (strcmp(it->value, "sink") == 0)
				sc.type = SERIAL_CFG_SINK;
			else if (strcmp(it->value, "syslog") == 0)
				sc.type = SERIAL_CFG_SYSLOG;
			else {
				log_err(lg,
					"--serial: type '%s' is not supported "
					"(use stdout, file, sink or syslog)",
					it->value);
				goto inval;
			}
		} else if (strcmp(it->key, "num") == 0 && it->value) {
			/* As crosvm: 1-4 for a UART (checked below), a u8 from 1 otherwise. */
			if (parse_u64(it->value, &num) < 0 || num < 1 ||
			    num > CONFIG_MAX_VCONSOLE_NUM) {
				log_err(lg,
					"--serial: num=%s is out of range (1-4; 1-255 with "
					"hardware=virtio-console)",
					it->value);
				goto inval;
			}
		} else if (strcmp(it->key, "path") == 0 && it->value) {
			free(sc.path);
			sc.path = strdup(it->value);
			if (!sc.path)
				goto inval;
		} else if (strcmp(it->key, "hardware") == 0 && it->value) {
			if (strcmp(it->value, "serial") == 0)
				virtio = false;
			else if (strcmp(it->value, "virtio-console") == 0)
				virtio = true;
			else {
				log_err(lg,
					"--serial: hardware=%s is not supported (serial or "
					"virtio-console)",
					it->value);
				goto inval;
			}
		} else if (strcmp(it->key, "console") == 0 || strcmp(it->key, "stdin") == 0 ||
			   strcmp(it->key, "earlycon") == 0) {
			if (kv_bool(it, &b) < 0) {
				log_err(lg, "--serial: %s=%s is not a boolean", it->key, it->value);
				goto inval;
			}
			if (it->key[0] == 'c')
				sc.console = b;
			else if (it->key[0] == 's')
				sc.stdin_ = b;
			else
				sc.earlycon = b;
		} else {
			log_err(lg, "--serial: unknown key '%s'", it->key);
			goto inval;
		}
	}
	if (!have_type) {
		log_err(lg, "--serial: type= is required (stdout, file, sink or syslog)");
		goto inval;
	}
	if (sc.type == SERIAL_CFG_FILE && !sc.path) {
		log_err(lg, "--serial: type=file needs path=");
		goto inval;
	}
	if (sc.type != SERIAL_CFG_FILE && sc.path) {
		log_err(lg, "--serial: path= is only valid with type=file");
		goto inval;
	}
	sc.present = true;
	if (virtio) {
		if (cli_add_vconsole(cfg, (unsigned)num, &sc, lg) < 0)
			goto inval;
		kvlist_free(&l);
		return 0;
	}
	if (num > CONFIG_MAX_SERIAL) {
		log_err(lg, "--serial: num=%llu is out of range (1-4)", (unsigned long long)num);
		goto inval;
	}
	if (cfg->serial[num - 1].present) {
		log_err(lg, "--serial: num=%llu given twice", (unsigned long long)num);
		goto inval;
	}
	cfg->serial[num - 1] = sc;
	kvlist_free(&l);
	return 0;
inval:
	free(sc.path);
	kvlist_free(&l);
	return -EINVAL;
}

static const char *const block_flags[] = {"ro", "root", "sparse", "direct", "lock", NULL};

static int add_disk(struct vm_config *cfg, const struct disk_config *d, const struct logger *lg)
{
	if (cfg->nr_disks >= CONFIG_MAX_DISKS) {
		log_err(lg, "too many disks (at most %d)", CONFIG_MAX_DISKS);
		return -EINVAL;
	}
	cfg->disks[cfg->nr_disks++] = *d;
	return 0;
}

int cli_parse_block(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct disk_config d = {.sparse = true, .lock = true, .block_size = 512};
	struct kvlist l;
	int ret;

	ret = kvlist_parse(&l, s, "path", block_flags);
	if (ret < 0) {
		log_err(lg, "--block: cannot parse '%s'", s);
		return -EINVAL;
	}
	for (unsigned i = 0; i < l.nr; i++) {
		const struct kv_item *it = &l.items[i];
		bool b = false;
		uint64_t v;

		if (strcmp(it->key, "path") == 0 && it->value) {
			free(d.path);
			d.path = strdup(it->value);
			if (!d.path)
				goto inval;
		} else if (strcmp(it->key, "block-size") == 0 && it->value) {
			if (parse_u64(it->value, &v) < 0 || v < 512 || v > 65536 || (v & (v - 1))) {
				log_err(lg,
					"--block: block-size=%s must be a power of two in "
					"512..65536",
					it->value);
				goto inval;
			}
			d.block_size = (uint32_t)v;
		} else if (strcmp(it->key, "id") == 0 && it->value) {
			if (strlen(it->value) > 20) {
				log_err(lg, "--block: id '%s' is longer than 20 bytes", it->value);
				goto inval;
			}
			snprintf(d.id, sizeof(d.id), "%s", it->value);
			d.has_id = true;
		} else if (strcmp(it->key, "num-queues") == 0 && it->value) {
			if (parse_u64(it->value, &v) < 0 || v < 1 || v > VIRTIO_BLK_MAX_QUEUES) {
				log_err(lg, "--block: num-queues=%s must be in 1..%u", it->value,
					VIRTIO_BLK_MAX_QUEUES);
				goto inval;
			}
			d.num_queues = (uint16_t)v;
		} else if (strcmp(it->key, "async-executor") == 0 && it->value) {
			if (strcmp(it->value, "uring") == 0) {
				d.engine = DISK_ENGINE_URING;
			} else if (strcmp(it->value, "epoll") == 0) {
				d.engine = DISK_ENGINE_SYNC;
			} else {
				log_err(lg, "--block: async-executor=%s: uring or epoll",
					it->value);
				goto inval;
			}
		} else if (strcmp(it->key, "direct") == 0 && it->value &&
			   strcmp(it->value, "o_direct") == 0) {
			d.direct = true;
		} else if (strcmp(it->key, "ro") == 0 || strcmp(it->key, "root") == 0 ||
			   strcmp(it->key, "sparse") == 0 || strcmp(it->key, "direct") == 0 ||
			   strcmp(it->key, "lock") == 0) {
			if (kv_bool(it, &b) < 0) {
				log_err(lg, "--block: %s=%s is not a boolean", it->key, it->value);
				goto inval;
			}
			if (strcmp(it->key, "ro") == 0)
				d.ro = b;
			else if (strcmp(it->key, "root") == 0)
				d.root = b;
			else if (strcmp(it->key, "sparse") == 0)
				d.sparse = b;
			else if (strcmp(it->key, "direct") == 0)
				d.direct = b;
			else
				d.lock = b;
		} else {
			log_err(lg, "--block: unknown or unsupported key '%s'", it->key);
			goto inval;
		}
	}
	if (!d.path || !*d.path) {
		log_err(lg, "--block: a path is required");
		goto inval;
	}
	kvlist_free(&l);
	if (add_disk(cfg, &d, lg) < 0) {
		free(d.path);
		return -EINVAL;
	}
	return 0;
inval:
	free(d.path);
	kvlist_free(&l);
	return -EINVAL;
}

/* The deprecated single-path disk options, folded into --block in command-line order. */
static int add_simple_disk(struct vm_config *cfg, const char *path, bool ro, bool root,
			   const struct logger *lg)
{
	struct disk_config d = {
		.ro = ro, .root = root, .sparse = true, .lock = true, .block_size = 512};

	if (!*path) {
		log_err(lg, "disk path is empty");
		return -EINVAL;
	}
	d.path = strdup(path);
	if (!d.path)
		return -ENOMEM;
	if (add_disk(cfg, &d, lg) < 0) {
		free(d.path);
		return -EINVAL;
	}
	return 0;
}

static int append_params(struct vm_config *cfg, const char *p)
{
	size_t old = cfg->params ? strlen(cfg->params) : 0;
	char *n = realloc(cfg->params, old + strlen(p) + 2);

	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ' ';
	memcpy(n + old, p, strlen(p) + 1);
	cfg->params = n;
	return 0;
}

static int parse_hypervisor(const char *v, struct vm_config *cfg, const struct logger *lg)
{
	struct kvlist l;
	int ret = 0;

	/* "kvm" or "kvm[device=PATH]" */
	if (strcmp(v, "kvm") == 0)
		return 0;
	if (strncmp(v, "kvm[", 4) != 0 || v[strlen(v) - 1] != ']') {
		log_err(lg, "--hypervisor: only kvm is supported, got '%s'", v);
		return -EINVAL;
	}
	{
		char inner[512];
		size_t n = strlen(v) - 5;

		if (n >= sizeof(inner)) {
			log_err(lg, "--hypervisor: argument too long");
			return -EINVAL;
		}
		memcpy(inner, v + 4, n);
		inner[n] = '\0';
		if (kvlist_parse(&l, inner, NULL, NULL) < 0) {
			log_err(lg, "--hypervisor: cannot parse '%s'", v);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < l.nr; i++) {
		if (strcmp(l.items[i].key, "device") == 0 && l.items[i].value) {
			ret = str_set(&cfg->kvm_device, l.items[i].value);
		} else {
			log_err(lg, "--hypervisor: unknown key '%s'", l.items[i].key);
			ret = -EINVAL;
		}
		if (ret < 0)
			break;
	}
	kvlist_free(&l);
	return ret;
}

static int parse_one(int opt, const char *arg, const char *name, struct vm_config *cfg,
		     const struct logger *lg)
{
	int r;

	switch (opt) {
	case 'm':
		r = cli_parse_mem(arg, &cfg->mem_mib);
		if (r < 0)
			log_err(lg, "--mem: '%s' is not a valid size in MiB (1 to 1099511627776)",
				arg);
		return r < 0 ? -EINVAL : 0;
	case 'c':
		r = cli_parse_cpus(arg, &cfg->cpus);
		if (r < 0)
			log_err(lg, "--cpus: '%s' is not a valid vCPU count (at least 1)", arg);
		return r < 0 ? -EINVAL : 0;
	case 'i':
		return str_set(&cfg->initrd, arg);
	case 'p':
		return append_params(cfg, arg);
	case OPT_SERIAL:
		return cli_parse_serial(arg, cfg, lg);
	case OPT_DISABLE_SANDBOX:
		cfg->disable_sandbox = true;
		return 0;
	case OPT_NO_I8042:
		cfg->no_i8042 = true;
		return 0;
	case OPT_NO_RTC:
		cfg->no_rtc = true;
		return 0;
	case OPT_NO_RNG:
		cfg->no_rng = true;
		return 0;
	case OPT_NO_BALLOON:
		cfg->no_balloon = true;
		return 0;
	case OPT_DUMP_DTB:
		return str_set(&cfg->dump_dtb, arg);
	case OPT_DUMP_ACPI:
		return str_set(&cfg->dump_acpi, arg);
	case 'b':
		return cli_parse_block(arg, cfg, lg);
	case 'r':
		return add_simple_disk(cfg, arg, true, true, lg);
	case OPT_RWROOT:
		return add_simple_disk(cfg, arg, false, true, lg);
	case 'd':
		return add_simple_disk(cfg, arg, true, false, lg);
	case OPT_RWDISK:
		return add_simple_disk(cfg, arg, false, false, lg);
	case 's':
		return str_set(&cfg->socket_path, arg);
	case OPT_SECCOMP_DIR:
		return str_set(&cfg->seccomp_policy_dir, arg);
	case OPT_SECCOMP_LOG:
		cfg->seccomp_log_failures = true;
		return 0;
	case OPT_PIVOT_ROOT:
		return str_set(&cfg->pivot_root, arg);
	case OPT_BOOT_PROTOCOL:
		if (strcmp(arg, "auto") == 0)
			cfg->boot_proto = BOOT_CFG_AUTO;
		else if (strcmp(arg, "linux") == 0)
			cfg->boot_proto = BOOT_CFG_LINUX;
		else if (strcmp(arg, "pvh") == 0)
			cfg->boot_proto = BOOT_CFG_PVH;
		else {
			log_err(lg, "--boot-protocol: '%s' is not auto, linux or pvh", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_HYPERVISOR:
		return parse_hypervisor(arg, cfg, lg);
	case OPT_KVM_DEVICE:
		return str_set(&cfg->kvm_device, arg);
	case OPT_SHARED_DIR:
		return cli_parse_shared_dir(arg, cfg, lg);
	case OPT_TEST_VIOLATION:
		return str_set(&cfg->test_seccomp_violation, arg);
	case OPT_GDB:
		return cli_parse_gdb(arg, cfg, lg);
	case OPT_VSOCK:
		return cli_parse_vsock(arg, cfg, lg);
	case OPT_CID:
		return cli_parse_cid(arg, cfg, lg);
	case OPT_NET:
		return cli_parse_net(arg, cfg, lg);
	case OPT_NET_LEGACY:
		return cli_net_legacy_option(name, arg, cfg, lg);
	case OPT_UNSUPPORTED:
		log_err(lg, "--%s is not supported by this crosvm build", name);
		return -EINVAL;
	default:
		return -EINVAL;
	}
}

/*
 * getopt_long accepts any unambiguous prefix of a long option ("--me 512"); crosvm does not,
 * and a typo should not silently become another option. Long options must be spelt out.
 */
static int check_long_names(int argc, char **argv, const struct logger *lg)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct option *o;
		size_t n;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0) {
			/* A short option that takes its value from the next argument. */
			if (a[0] == '-' && a[1] && strchr("mcipbrds", a[1]) && !a[2])
				i++;
			continue;
		}
		n = strcspn(a + 2, "=");
		for (o = run_options; o->name; o++)
			if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0)
				break;
		if (!o->name) {
			log_err(lg, "run: unknown option '%.*s' (see crosvm run --help)",
				(int)n + 2, a);
			return -EINVAL;
		}
		if (o->has_arg == required_argument && !a[n + 2])
			i++;
	}
	return 0;
}

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, const struct logger *lg)
{
	int opt, idx, ret;

	ret = check_long_names(argc, argv, lg);
	if (ret < 0)
		return ret;
	optind = 1;
	opterr = 0;
	for (;;) {
		idx = -1;
		opt = getopt_long(argc, argv, ":m:c:i:p:b:r:d:s:h", run_options, &idx);
		if (opt == -1)
			break;
		if (opt == 'h') {
			cli_run_usage(stdout);
			return CLI_HELP;
		}
		if (opt == '?') {
			/* Long options report their internal code in optopt: name them instead. */
			if (optopt && optopt < 0x100)
				log_err(lg, "run: unknown option '-%c' (see crosvm run --help)",
					optopt);
			else
				log_err(lg, "run: unknown option '%s' (see crosvm run --help)",
					argv[optind - 1]);
			return -EINVAL;
		}
		if (opt == ':') {
			log_err(lg, "run: option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		ret = parse_one(opt, optarg, idx >= 0 ? run_options[idx].name : "", cfg, lg);
		if (ret < 0)
			return -EINVAL;
	}
	if (optind >= argc) {
		log_err(lg, "run: a KERNEL path is required (see crosvm run --help)");
		return -EINVAL;
	}
	if (optind + 1 < argc) {
		log_err(lg, "run: unexpected argument '%s' after the kernel", argv[optind + 1]);
		return -EINVAL;
	}
	if (!*argv[optind]) {
		log_err(lg, "run: the KERNEL path is empty");
		return -EINVAL;
	}
	ret = str_set(&cfg->kernel, argv[optind]);
	if (ret < 0)
		return ret;
	return cli_finalize(cfg, lg);
}

int cli_finalize(struct vm_config *cfg, const struct logger *lg)
{
	unsigned consoles = 0, stdins = 0, earlycons = 0, roots = 0;

	for (unsigned i = 0; i < CONFIG_MAX_SERIAL; i++) {
		consoles += cfg->serial[i].console;
		stdins += cfg->serial[i].stdin_;
		earlycons += cfg->serial[i].earlycon;
	}
	for (unsigned i = 0; i < cfg->nr_vconsoles; i++) {
		consoles += cfg->vconsole[i].s.console;
		stdins += cfg->vconsole[i].s.stdin_;
	}
	if (consoles > 1 || stdins > 1 || earlycons > 1) {
		log_err(lg, "--serial: at most one port may have %s",
			consoles > 1 ? "console"
			: stdins > 1 ? "stdin"
				     : "earlycon");
		return -EINVAL;
	}
	/* As crosvm: without a console, COM1 (if not configured) is stdout + stdin + console. */
	if (!consoles && !cfg->serial[0].present)
		cfg->serial[0] = (struct serial_config){.present = true,
							.type = SERIAL_CFG_STDOUT,
							.console = true,
							.stdin_ = !stdins};
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		roots += cfg->disks[i].root;
	if (roots > 1) {
		log_err(lg, "only one disk can be the root disk");
		return -EINVAL;
	}
	return cli_net_finalize(cfg, lg);
}
