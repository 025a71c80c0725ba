/*
 * mkbzimage: wraps a test guest into a Linux bzImage (boot protocol 2.15).
 *
 *   mkbzimage PAYLOAD.bin GUEST.elf SETUP.bin OUT.bzImage
 *
 * PAYLOAD.bin is `objcopy -O binary` of GUEST.elf: its memory image from the load address
 * on. The ELF is read only for the load address, the entry and the memory span (init_size,
 * which covers .bss and the stacks). SETUP.bin is the real-mode setup code (setup.S), for
 * loaders that start a bzImage in real mode; the jump in the setup header lands on it. The
 * output is the boot sector and setup sectors (header, setup code, version string), then
 * the payload; a 64-bit loader puts the payload at code32_start and enters it at +0x200.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR	0x100000u
#define ENTRY64_OFFSET	0x200u
#define SECTOR		512u
#define MAX_SETUP_SECTS 15u
#define SETUP_MAX	((MAX_SETUP_SECTS + 1) * SECTOR)
#define SETUP_CODE	0x280u /* setup.S runs here: CS:0x80 of the real-mode entry */
#define MAX_FILE	(64u << 20)
#define BOOT_VERSION	0x020f
#define LOADED_HIGH	0x01
#define XLF_KERNEL_64	0x01
#define KERNEL_ALIGN	0x200000u
#define CMDLINE_SIZE	2047u
#define INITRD_ADDR_MAX 0x7fffffffu

static const char version_string[] = "crosvm test guest";

static void put16(uint8_t *p, uint32_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint32_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

/* Reads a whole file of at most MAX_FILE bytes. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	int rc = 0;

	if (!f) {
		rc = -errno;
		fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
		return rc;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		rc = -EIO;
		fprintf(stderr, "mkbzimage: %s: cannot get its size\n", path);
		goto out;
	}
	if ((unsigned long)size > MAX_FILE || size == 0) {
		rc = -EINVAL;
		fprintf(stderr, "mkbzimage: %s: size %ld is not in (0, %u]\n", path, size,
			MAX_FILE);
		goto out;
	}
	buf = malloc((size_t)size);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		rc = -EIO;
		fprintf(stderr, "mkbzimage: %s: short read\n", path);
		goto out;
	}
	*data = buf;
	*len = (size_t)size;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* The memory span [LOAD_ADDR, end) of the loadable segments, checked against our layout. */
static int elf_span(const char *path, const uint8_t *elf, size_t len, uint32_t *span)
{
	Elf64_Ehdr eh;
	uint64_t lo = UINT64_MAX, hi = 0;

	if (len < sizeof(eh)) {
		fprintf(stderr, "mkbzimage: %s: too short for an ELF header\n", path);
		return -EINVAL;
	}
	memcpy(&eh, elf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		fprintf(stderr, "mkbzimage: %s: not an x86_64 ELF64 file\n", path);
		return -EINVAL;
	}
	if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff) {
		fprintf(stderr, "mkbzimage: %s: program headers out of bounds\n", path);
		return -EINVAL;
	}
	if (eh.e_entry != LOAD_ADDR + ENTRY64_OFFSET) {
		fprintf(stderr, "mkbzimage: %s: entry 0x%llx is not 0x%x\n", path,
			(unsigned long long)eh.e_entry, LOAD_ADDR + ENTRY64_OFFSET);
		return -EINVAL;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr) {
			fprintf(stderr, "mkbzimage: %s: segment wraps around\n", path);
			return -EINVAL;
		}
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
	}
	if (lo != LOAD_ADDR || hi - lo > UINT32_MAX) {
		fprintf(stderr, "mkbzimage: %s: image must start at 0x%x and be < 4 GiB\n", path,
			LOAD_ADDR);
		return -EINVAL;
	}
	*span = (uint32_t)(hi - lo);
	return 0;
}

/* Builds the setup sectors; returns their size, or 0 if the setup code does not fit. */
static size_t fill_setup(uint8_t *s, const uint8_t *code, size_t code_len, size_t payload_len,
			 uint32_t init_size)
{
	size_t version = SETUP_CODE + code_len;
	size_t end = version + sizeof(version_string);
	size_t sects = (end + SECTOR - 1) / SECTOR - 1;

	if (end > SETUP_MAX)
		return 0;
	if (sects < 1)
		sects = 1;
	s[0x1f1] = (uint8_t)sects;
	put32(s, 0x1f4, (uint32_t)((payload_len + 15) / 16)); /* syssize */
	put16(s, 0x1fa, 0xffff);			      /* vid_mode: normal */
	put16(s, 0x1fe, 0xaa55);			      /* boot_flag */
	s[0x200] = 0xeb;				      /* jmp SETUP_CODE */
	s[0x201] = (uint8_t)(SETUP_CODE - 0x202);
	memcpy(s + 0x202, "HdrS", 4);
	put16(s, 0x206, BOOT_VERSION);
	put16(s, 0x20e, (uint16_t)(version - 0x200)); /* kernel_version */
	s[0x211] = LOADED_HIGH;
	put32(s, 0x214, LOAD_ADDR); /* code32_start */
	put32(s, 0x22c, INITRD_ADDR_MAX);
	put32(s, 0x230, KERNEL_ALIGN);
	s[0x234] = 0;			/* relocatable_kernel */
	s[0x235] = 21;			/* min_alignment: 2 MiB */
	put16(s, 0x236, XLF_KERNEL_64); /* xloadflags */
	put32(s, 0x238, CMDLINE_SIZE);
	put64(s, 0x258, LOAD_ADDR); /* pref_address */
	put32(s, 0x260, init_size);
	memcpy(s + SETUP_CODE, code, code_len);
	memcpy(s + version, version_string, sizeof(version_string));
	return (sects + 1) * SECTOR;
}

static int write_image(const char *path, const uint8_t *setup, size_t setup_len,
		       const uint8_t *payload, size_t len)
{
	static const uint8_t zeros[16];
	FILE *f = fopen(path, "wb");
	size_t pad = (16 - len % 16) % 16;
	int rc = 0;

	if (!f) {
		rc = -errno;
		fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
		return rc;
	}
	if (fwrite(setup, 1, setup_len, f) != setup_len || fwrite(payload, 1, len, f) != len ||
	    fwrite(zeros, 1, pad, f) != pad)
		rc = -EIO;
	if (fclose(f) != 0 && !rc)
		rc = -EIO;
	if (rc) {
		fprintf(stderr, "mkbzimage: %s: write failed\n", path);
		remove(path);
	}
	return rc;
}

int main(int argc, char **argv)
{
	uint8_t setup[SETUP_MAX] = {0};
	uint8_t *payload = NULL, *elf = NULL, *code = NULL;
	size_t payload_len, elf_len, code_len, setup_len;
	uint32_t span;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: mkbzimage PAYLOAD.bin GUEST.elf SETUP.bin OUT.bzImage\n");
		return 2;
	}
	rc = read_file(argv[1], &payload, &payload_len);
	if (rc)
		goto out;
	rc = read_file(argv[2], &elf, &elf_len);
	if (rc)
		goto out;
	rc = read_file(argv[3], &code, &code_len);
	if (rc)
		goto out;
	rc = elf_span(argv[2], elf, elf_len, &span);
	if (rc)
		goto out;
	if (payload_len > span || payload_len <= ENTRY64_OFFSET) {
		fprintf(stderr, "mkbzimage: %s: %zu bytes do not fit the ELF's span of %u\n",
			argv[1], payload_len, span);
		rc = -EINVAL;
		goto out;
	}
	setup_len = fill_setup(setup, code, code_len, payload_len, (span + 0xfffu) & ~0xfffu);
	if (!setup_len) {
		fprintf(stderr, "mkbzimage: %s: %zu bytes of setup code do not fit %u sectors\n",
			argv[3], code_len, MAX_SETUP_SECTS);
		rc = -EINVAL;
		goto out;
	}
	rc = write_image(argv[4], setup, setup_len, payload, payload_len);
out:
	free(payload);
	free(elf);
	free(code);
	return rc ? 1 : 0;
}
