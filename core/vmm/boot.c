#include "core/vmm/boot.h"
#include "core/boot/acpi.h"
#include "core/boot/boot_params.h"
#include "core/boot/cmdline.h"
#include "core/boot/fdt.h"
#include "core/layout.h"
#include "core/boot/loader.h"
#include "core/boot/pvh.h"
#include "core/vmm/vm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define DTB_MAX_SIZE  0x4000 /* 16 KiB, as crosvm */
#define RNG_SEED_SIZE 32

static const uint16_t com_ports[] = {LAYOUT_PORT_COM1, LAYOUT_PORT_COM2, LAYOUT_PORT_COM3,
				     LAYOUT_PORT_COM4};

int boot_build_cmdline(const struct vm_config *cfg, struct cmdline *c)
{
	char buf[64];
	int ret;

	/* crosvm never reboots in-process: a panicking guest should reset at once. */
	ret = cmdline_append(c, "panic=-1");
	for (unsigned i = 0; ret == 0 && i < CONFIG_MAX_SERIAL; i++) {
		if (cfg->serial[i].console) {
			snprintf(buf, sizeof(buf), "console=ttyS%u", i);
			ret = cmdline_append(c, buf);
		}
	}
	for (unsigned i = 0; ret == 0 && i < cfg->nr_vconsoles; i++) {
		if (cfg->vconsole[i].s.console) {
			snprintf(buf, sizeof(buf), "console=hvc%u", cfg->vconsole[i].num - 1);
			ret = cmdline_append(c, buf);
		}
	}
	for (unsigned i = 0; ret == 0 && i < CONFIG_MAX_SERIAL; i++) {
		if (cfg->serial[i].earlycon) {
			snprintf(buf, sizeof(buf), "earlycon=uart8250,io,0x%x", com_ports[i]);
			ret = cmdline_append(c, buf);
		}
	}
	for (unsigned i = 0; ret == 0 && i < cfg->nr_disks; i++) {
		if (cfg->disks[i].root) {
			snprintf(buf, sizeof(buf), "root=/dev/vd%c %s", 'a' + i,
				 cfg->disks[i].ro ? "ro" : "rw");
			ret = cmdline_append(c, buf);
		}
	}
	if (ret == 0 && cfg->params && *cfg->params)
		ret = cmdline_append(c, cfg->params);
	return ret;
}

/* Opens a boot file and refuses anything that is not a non-empty regular file. */
static int open_boot_file(struct vm *vm, const char *what, const char *path, int *fd)
{
	struct stat st;
	int f = open(path, O_RDONLY | O_CLOEXEC);

	if (f < 0) {
		int e = errno;

		log_err(vm->log, "cannot open %s '%s': %s", what, path, strerror(e));
		return -e;
	}
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_err(vm->log, "%s '%s' is not a regular file", what, path);
		close(f);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		log_err(vm->log, "%s '%s' is empty", what, path);
		close(f);
		return -EINVAL;
	}
	*fd = f;
	return 0;
}

static int write_file(struct vm *vm, const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ret;

	if (fd < 0) {
		ret = -errno;
		log_err(vm->log, "cannot write '%s': %s", path, strerror(-ret));
		return ret;
	}
	ret = write_full(fd, data, len);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		log_err(vm->log, "cannot write '%s': %s", path, strerror(-ret));
	return ret;
}

static enum boot_protocol proto_of(enum boot_proto_cfg p)
{
	return p == BOOT_CFG_LINUX ? BOOT_PROTO_LINUX
	       : p == BOOT_CFG_PVH ? BOOT_PROTO_PVH
				   : BOOT_PROTO_AUTO;
}

int boot_setup(struct vm *vm, struct vcpu_boot *boot)
{
	const struct vm_config *cfg = vm->cfg;
	struct boot_config bc = {0};
	struct acpi_params ap = {0};
	struct kernel_info ki;
	struct cmdline cl = {0};
	uint8_t seed[RNG_SEED_SIZE];
	void *dtb = NULL;
	int kfd = -1, ifd = -1, ret;

	ret = open_boot_file(vm, "kernel", cfg->kernel, &kfd);
	if (ret < 0)
		return ret;
	ret = kernel_load(&vm->mem, kfd, proto_of(cfg->boot_proto), &ki, vm->log);
	if (ret < 0)
		goto out;
	if (cfg->initrd) {
		ret = open_boot_file(vm, "initrd", cfg->initrd, &ifd);
		if (ret < 0)
			goto out;
		ret = initrd_load(&vm->mem, ifd, &ki, &bc.initrd_gpa, &bc.initrd_size, vm->log);
		if (ret < 0)
			goto out;
	}

	ret = cmdline_init(&cl, ki.cmdline_size + 1 < LAYOUT_CMDLINE_MAX ? ki.cmdline_size + 1
									 : LAYOUT_CMDLINE_MAX);
	if (ret < 0)
		goto out;
	ret = boot_build_cmdline(cfg, &cl);
	if (ret < 0) {
		if (ret == -E2BIG)
			log_err(vm->log,
				"the kernel command line is too long (the kernel accepts %u bytes)",
				ki.cmdline_size);
		else
			log_err(vm->log, "the kernel command line (-p) holds a control character "
					 "such as a newline");
		ret = -EINVAL;
		goto out;
	}
	bc.cmdline = cl.buf;

	ap.nr_cpus = cfg->cpus;
	ap.has_i8042 = !cfg->no_i8042;
	ap.has_rtc = !cfg->no_rtc;
	layout_mmio64(&vm->mem, &ap.mmio64_base, &ap.mmio64_size);
	ret = acpi_build(&vm->mem, &ap, &bc.acpi_rsdp, vm->log);
	if (ret < 0) {
		log_err(vm->log, "cannot build the ACPI tables: %s", strerror(-ret));
		goto out;
	}
	if (cfg->dump_acpi) {
		ret = acpi_dump(&vm->mem, bc.acpi_rsdp, cfg->dump_acpi, vm->log);
		if (ret < 0)
			goto out;
	}

	if (cfg->dump_dtb) {
		struct fdt_params fp = {.mem = &vm->mem,
					.cmdline = cl.buf,
					.initrd_gpa = bc.initrd_gpa,
					.initrd_size = bc.initrd_size};
		size_t len = 0;

		dtb = calloc(1, DTB_MAX_SIZE);
		if (!dtb) {
			ret = -ENOMEM;
			goto out;
		}
		ret = fdt_build(&fp, dtb, DTB_MAX_SIZE, &len);
		if (ret < 0) {
			log_err(vm->log, "cannot build the device tree: %s", strerror(-ret));
			goto out;
		}
		ret = write_file(vm, cfg->dump_dtb, dtb, len);
		if (ret < 0)
			goto out;
		bc.dtb = dtb;
		bc.dtb_size = len;
	}

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		ret = -errno;
		log_err(vm->log, "getrandom failed: %s", strerror(-ret));
		goto out;
	}
	bc.rng_seed = seed;
	bc.rng_seed_size = sizeof(seed);

	if (ki.kind == KERNEL_PVH) {
		*boot = (struct vcpu_boot){.mode = VCPU_BOOT_PVH32, .entry = ki.entry};
		ret = pvh_write(&vm->mem, &bc, &boot->start_info);
	} else {
		*boot = (struct vcpu_boot){
			.mode = VCPU_BOOT_LONG64, .entry = ki.entry, .zero_page = LAYOUT_ZERO_PAGE};
		ret = boot_params_write(&vm->mem, &ki, &bc, vm->log);
	}
	if (ret < 0)
		log_err(vm->log, "cannot write the boot information: %s", strerror(-ret));
	else
		log_debug(vm->log, "kernel: %s entry 0x%llx, image [0x%llx, 0x%llx), cmdline '%s'",
			  ki.kind == KERNEL_PVH	      ? "PVH"
			  : ki.kind == KERNEL_BZIMAGE ? "bzImage"
						      : "ELF64",
			  (unsigned long long)ki.entry, (unsigned long long)ki.start,
			  (unsigned long long)ki.end, cl.buf);
out:
	explicit_bzero(seed, sizeof(seed));
	free(dtb);
	cmdline_free(&cl);
	close_fd(&kfd);
	close_fd(&ifd);
	return ret;
}
