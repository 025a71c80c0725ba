/*
 * The parsed command line of `crosvm run`. Filled by core/vmm/cli.c, read-only afterwards; every
 * string is owned by the config (freed by config_free).
 */
#ifndef CROSVM_CORE_VMM_CONFIG_H
#define CROSVM_CORE_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "virtio/disk.h"
#include "virtio/net.h"
#include "virtio/fs.h"

#define CONFIG_MAX_SERIAL	4
#define CONFIG_MAX_VCONSOLE	8   /* --serial ...,hardware=virtio-console devices */
#define CONFIG_MAX_VCONSOLE_NUM 255 /* crosvm's num is a u8 */
#define CONFIG_MAX_DISKS	16
#define CONFIG_MAX_SHARED_DIRS	8
#define CONFIG_DEFAULT_MEM_MIB	256
#define CONFIG_MAX_NETS		8

enum serial_out_type {
	SERIAL_CFG_SINK = 0,
	SERIAL_CFG_STDOUT,
	SERIAL_CFG_FILE,
	SERIAL_CFG_SYSLOG,
};

struct serial_config {
	bool present; /* given on the command line */
	enum serial_out_type type;
	char *path;   /* type=file */
	bool console; /* console=ttyS<n-1> on the kernel command line */
	bool stdin_;  /* takes input from stdin */
	bool earlycon;
};

/* One virtio-console device (crosvm makes one per --serial ...,hardware=virtio-console). */
struct vconsole_config {
	unsigned num;		/* its --serial num: console=hvc<num-1> */
	struct serial_config s; /* earlycon is never set */
};

/* --vsock / --cid: vhost-vsock (device), or the user-space device on a UNIX socket. */
struct vsock_config {
	bool present;
	uint64_t cid;
	char *device;	/* the vhost-vsock node; NULL: /dev/vhost-vsock */
	char *uds_path; /* the user-space device's UNIX socket; NULL: vhost */
};

/* crosvm's deprecated networking options, turned into --net devices by cli_finalize. */
struct net_legacy_config {
	char *host_ip, *netmask, *mac; /* --host-ip (--host_ip), --netmask, --mac */
	char *tap_names[CONFIG_MAX_NETS];
	unsigned nr_tap_names;
	int tap_fds[CONFIG_MAX_NETS];
	unsigned nr_tap_fds;
	bool vhost;	   /* --vhost-net */
	unsigned vq_pairs; /* --net-vq-pairs; 0: not given */
};

enum boot_proto_cfg { BOOT_CFG_AUTO = 0, BOOT_CFG_LINUX, BOOT_CFG_PVH };

struct vm_config {
	char *kernel;
	char *initrd;
	char *params; /* all -p strings joined with spaces */
	uint64_t mem_mib;
	unsigned cpus;
	enum boot_proto_cfg boot_proto;
	struct serial_config serial[CONFIG_MAX_SERIAL];
	struct vconsole_config vconsole[CONFIG_MAX_VCONSOLE]; /* in command-line order */
	unsigned nr_vconsoles;
	struct vsock_config vsock;
	struct disk_config disks[CONFIG_MAX_DISKS];
	unsigned nr_disks;
	struct net_config nets[CONFIG_MAX_NETS]; /* virtio-net devices, in creation order */
	unsigned nr_nets;
	struct net_legacy_config net_legacy;
	struct fs_config shared_dirs[CONFIG_MAX_SHARED_DIRS]; /* --shared-dir, in order */
	unsigned nr_shared_dirs;
	bool disable_sandbox;
	bool no_i8042, no_rtc, no_rng, no_balloon;
	char *dump_dtb;
	char *dump_acpi;
	char *socket_path;
	char *seccomp_policy_dir;
	bool seccomp_log_failures;
	char *pivot_root;
	char *kvm_device;
	uint16_t gdb_port; /* --gdb: 0 when not debugging */
	/* test-only: make the named device make a forbidden syscall after start */
	char *test_seccomp_violation;
};

void config_init(struct vm_config *c);
void config_free(struct vm_config *c);

#endif
