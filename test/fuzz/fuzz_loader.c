/*
 * libFuzzer target for the kernel loaders: the input is a kernel file, loaded with every boot
 * protocol into a small guest. Any crash, sanitizer report or hang is a bug; refusals are
 * the expected outcome for almost every input.
 */
#include "core/boot/loader.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Small enough to keep each run cheap, large enough for segments above 1 MiB. */
#define FUZZ_RAM MiB(8)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum boot_protocol protos[] = {BOOT_PROTO_AUTO, BOOT_PROTO_LINUX,
						    BOOT_PROTO_PVH};
	struct logger quiet = {.level = LOG_LVL_OFF};
	struct kernel_info ki;
	struct guest_mem m;
	int fd;

	fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write_full(fd, data, size) < 0)
		goto out_fd;
	if (guest_mem_create(&m, FUZZ_RAM) < 0)
		goto out_fd;
	for (unsigned i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (kernel_load(&m, fd, protos[i], &ki, &quiet) < 0)
			continue;
		/* What a caller relies on after success. */
		if (ki.end <= ki.start || !guest_mem_valid(&m, ki.start, ki.end - ki.start))
			__builtin_trap();
		if (ki.kind == KERNEL_PVH && ki.entry >= (1ULL << 32))
			__builtin_trap();
	}
	guest_mem_destroy(&m);
out_fd:
	close(fd);
	return 0;
}
