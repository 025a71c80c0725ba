#include "vcpu/gdb/regs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum feature { F_CORE, F_SSE, F_SEGMENTS, F_SYSTEM, F_COUNT };

enum kind {
	K_U64,	  /* 8 bytes at an offset of struct gdb_cpu_state */
	K_RFLAGS, /* eflags: the low 32 bits of rflags */
	K_SEL,	  /* a segment register's selector, in 32 bits */
	K_ST,	  /* x87 register (80 bits of a 16-byte slot) */
	K_FCW,
	K_FSW,
	K_FTAG, /* the full tag word, from KVM's abridged one */
	K_FISEG,
	K_FIOFF,
	K_FOSEG,
	K_FOOFF,
	K_FOP,
	K_XMM,
	K_MXCSR,
	K_KGS,
};

struct reg_desc {
	const char *name;
	const char *type;  /* in the target description */
	const char *group; /* gdb's register group, when not the default */
	uint8_t size;	   /* bytes */
	uint8_t kind;
	uint8_t feature;
	uint8_t set_group; /* GDB_REGS_*: where a write goes */
	uint16_t arg;	   /* K_U64/K_SEL: offset in struct gdb_cpu_state; K_ST/K_XMM: index */
};

#define OFF(f) ((uint16_t)offsetof(struct gdb_cpu_state, f))
#define GPR(n, f, t)                                                                               \
	{                                                                                          \
		n, t, NULL, 8, K_U64, F_CORE, GDB_REGS_GPR, OFF(regs.f)                            \
	}
#define SEL(n, f)                                                                                  \
	{                                                                                          \
		n, "int32", NULL, 4, K_SEL, F_CORE, 0, OFF(sregs.f)                                \
	}
#define STX(i)                                                                                     \
	{                                                                                          \
		"st" #i, "i387_ext", NULL, 10, K_ST, F_CORE, GDB_REGS_FPU, i                       \
	}
#define FPC(n, k)                                                                                  \
	{                                                                                          \
		n, "int", "float", 4, k, F_CORE, GDB_REGS_FPU, 0                                   \
	}
#define XMM(i)                                                                                     \
	{                                                                                          \
		"xmm" #i, "vec128", NULL, 16, K_XMM, F_SSE, GDB_REGS_FPU, i                        \
	}
#define SYS(n, f)                                                                                  \
	{                                                                                          \
		n, "int", "system", 8, K_U64, F_SYSTEM, GDB_REGS_SREGS, OFF(sregs.f)               \
	}

/* gdb's amd64 register order: its i386 core feature insists on these names in this order. */
static const struct reg_desc regs[] = {
	GPR("rax", rax, "int64"),
	GPR("rbx", rbx, "int64"),
	GPR("rcx", rcx, "int64"),
	GPR("rdx", rdx, "int64"),
	GPR("rsi", rsi, "int64"),
	GPR("rdi", rdi, "int64"),
	GPR("rbp", rbp, "data_ptr"),
	GPR("rsp", rsp, "data_ptr"),
	GPR("r8", r8, "int64"),
	GPR("r9", r9, "int64"),
	GPR("r10", r10, "int64"),
	GPR("r11", r11, "int64"),
	GPR("r12", r12, "int64"),
	GPR("r13", r13, "int64"),
	GPR("r14", r14, "int64"),
	GPR("r15", r15, "int64"),
	GPR("rip", rip, "code_ptr"),
	{"eflags", "i386_eflags", NULL, 4, K_RFLAGS, F_CORE, GDB_REGS_GPR, 0},
	SEL("cs", cs),
	SEL("ss", ss),
	SEL("ds", ds),
	SEL("es", es),
	SEL("fs", fs),
	SEL("gs", gs),
	STX(0),
	STX(1),
	STX(2),
	STX(3),
	STX(4),
	STX(5),
	STX(6),
	STX(7),
	FPC("fctrl", K_FCW),
	FPC("fstat", K_FSW),
	FPC("ftag", K_FTAG),
	FPC("fiseg", K_FISEG),
	FPC("fioff", K_FIOFF),
	FPC("foseg", K_FOSEG),
	FPC("fooff", K_FOOFF),
	FPC("fop", K_FOP),
	XMM(0),
	XMM(1),
	XMM(2),
	XMM(3),
	XMM(4),
	XMM(5),
	XMM(6),
	XMM(7),
	XMM(8),
	XMM(9),
	XMM(10),
	XMM(11),
	XMM(12),
	XMM(13),
	XMM(14),
	XMM(15),
	{"mxcsr", "i386_mxcsr", "vector", 4, K_MXCSR, F_SSE, GDB_REGS_FPU, 0},
	{"fs_base", "int", NULL, 8, K_U64, F_SEGMENTS, GDB_REGS_SREGS, OFF(sregs.fs.base)},
	{"gs_base", "int", NULL, 8, K_U64, F_SEGMENTS, GDB_REGS_SREGS, OFF(sregs.gs.base)},
	{"k_gs_base", "int", "system", 8, K_KGS, F_SYSTEM, GDB_REGS_MSR, 0},
	SYS("cr0", cr0),
	SYS("cr2", cr2),
	SYS("cr3", cr3),
	SYS("cr4", cr4),
	SYS("cr8", cr8),
	SYS("efer", efer),
};

unsigned gdb_regs_count(void)
{
	return ARRAY_SIZE(regs);
}

size_t gdb_regs_size(void)
{
	size_t n = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(regs); i++)
		n += regs[i].size;
	return n;
}

size_t gdb_reg_size(unsigned n)
{
	return n < ARRAY_SIZE(regs) ? regs[n].size : 0;
}

/*
 * The x87 tag of one physical register from the FXSAVE image (Intel SDM vol. 1, 10.5.1.1):
 * KVM keeps the abridged tag (valid or empty); the full one says valid (0), zero (1),
 * special (2) or empty (3), from the register's value.
 */
static unsigned full_tag(const struct kvm_fpu *f, unsigned phys)
{
	unsigned top = (f->fsw >> 11) & 7;
	const uint8_t *r = f->fpr[(phys - top) & 7];
	uint64_t mant = get_le(r, 8);
	unsigned exp = (unsigned)get_le(r + 8, 2) & 0x7fff;

	if (!(f->ftwx & (1u << phys)))
		return 3;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant ? 2 : 1;
	return (mant >> 63) ? 0 : 2;
}

static uint8_t *field(struct gdb_cpu_state *st, uint16_t off)
{
	return (uint8_t *)st + off;
}

int gdb_reg_read(const struct gdb_cpu_state *st, unsigned n, uint8_t *buf)
{
	const struct reg_desc *d;
	const struct kvm_fpu *f = &st->fpu;
	uint64_t v = 0;

	if (n >= ARRAY_SIZE(regs))
		return -EINVAL;
	d = &regs[n];
	switch (d->kind) {
	case K_U64:
		memcpy(buf, (const uint8_t *)st + d->arg, 8);
		return 0;
	case K_ST:
		memcpy(buf, f->fpr[d->arg], 10);
		return 0;
	case K_XMM:
		memcpy(buf, f->xmm[d->arg], 16);
		return 0;
	case K_RFLAGS:
		v = (uint32_t)st->regs.rflags;
		break;
	case K_SEL: {
		const struct kvm_segment *s = (const void *)((const uint8_t *)st + d->arg);

		v = s->selector;
		break;
	}
	case K_FCW:
		v = f->fcw;
		break;
	case K_FSW:
		v = f->fsw;
		break;
	case K_FTAG:
		for (unsigned i = 0; i < 8; i++)
			v |= (uint64_t)full_tag(f, i) << (2 * i);
		break;
	case K_FISEG:
		v = f->last_ip >> 32;
		break;
	case K_FIOFF:
		v = (uint32_t)f->last_ip;
		break;
	case K_FOSEG:
		v = f->last_dp >> 32;
		break;
	case K_FOOFF:
		v = (uint32_t)f->last_dp;
		break;
	case K_FOP:
		v = f->last_opcode;
		break;
	case K_MXCSR:
		v = f->mxcsr;
		break;
	case K_KGS:
		if (!st->have_kernel_gs_base)
			return -ENODATA;
		v = st->kernel_gs_base;
		break;
	default:
		return -EINVAL;
	}
	put_le(buf, v, d->size);
	return 0;
}

int gdb_reg_write(struct gdb_cpu_state *st, unsigned n, const uint8_t *buf, unsigned *groups)
{
	const struct reg_desc *d;
	struct kvm_fpu *f = &st->fpu;
	uint8_t old[16];
	uint64_t v;
	int ret;

	if (n >= ARRAY_SIZE(regs))
		return -EINVAL;
	d = &regs[n];
	ret = gdb_reg_read(st, n, old);
	if (ret < 0)
		return ret;
	/* gdb's G writes every register back: the ones it did not change are no change here. */
	if (memcmp(old, buf, d->size) == 0)
		return 0;
	v = d->size <= 8 ? get_le(buf, d->size) : 0;
	switch (d->kind) {
	case K_U64:
		memcpy(field(st, d->arg), buf, 8);
		break;
	case K_ST:
		memcpy(f->fpr[d->arg], buf, 10);
		break;
	case K_XMM:
		memcpy(f->xmm[d->arg], buf, 16);
		break;
	case K_RFLAGS:
		st->regs.rflags = v;
		break;
	case K_SEL:
		return -ENOTSUP;
	case K_FCW:
	case K_FSW:
		if (v > 0xffff)
			return -EINVAL;
		if (d->kind == K_FCW)
			f->fcw = (uint16_t)v;
		else
			f->fsw = (uint16_t)v;
		break;
	case K_FTAG:
		if (v > 0xffff)
			return -EINVAL;
		f->ftwx = 0;
		for (unsigned i = 0; i < 8; i++)
			if (((v >> (2 * i)) & 3) != 3)
				f->ftwx |= (uint8_t)(1u << i);
		break;
	case K_FISEG:
		f->last_ip = (f->last_ip & 0xffffffffull) | v << 32;
		break;
	case K_FIOFF:
		f->last_ip = (f->last_ip & ~0xffffffffull) | v;
		break;
	case K_FOSEG:
		f->last_dp = (f->last_dp & 0xffffffffull) | v << 32;
		break;
	case K_FOOFF:
		f->last_dp = (f->last_dp & ~0xffffffffull) | v;
		break;
	case K_FOP:
		if (v > 0x7ff)
			return -EINVAL;
		f->last_opcode = (uint16_t)v;
		break;
	case K_MXCSR:
		f->mxcsr = (uint32_t)v;
		break;
	case K_KGS:
		st->kernel_gs_base = v;
		break;
	default:
		return -EINVAL;
	}
	*groups |= d->set_group;
	return 0;
}

static const char *const feature_names[F_COUNT] = {
	[F_CORE] = "org.gnu.gdb.i386.core",
	[F_SSE] = "org.gnu.gdb.i386.sse",
	[F_SEGMENTS] = "org.gnu.gdb.i386.segments",
	[F_SYSTEM] = "org.crosvm.x86.system",
};

/* The types the registers name, defined in the feature that uses them first. */
static const char *const feature_types[F_COUNT] = {
	[F_CORE] = "<flags id=\"i386_eflags\" size=\"4\">"
		   "<field name=\"CF\" start=\"0\" end=\"0\"/>"
		   "<field name=\"PF\" start=\"2\" end=\"2\"/>"
		   "<field name=\"AF\" start=\"4\" end=\"4\"/>"
		   "<field name=\"ZF\" start=\"6\" end=\"6\"/>"
		   "<field name=\"SF\" start=\"7\" end=\"7\"/>"
		   "<field name=\"TF\" start=\"8\" end=\"8\"/>"
		   "<field name=\"IF\" start=\"9\" end=\"9\"/>"
		   "<field name=\"DF\" start=\"10\" end=\"10\"/>"
		   "<field name=\"OF\" start=\"11\" end=\"11\"/>"
		   "<field name=\"NT\" start=\"14\" end=\"14\"/>"
		   "<field name=\"RF\" start=\"16\" end=\"16\"/>"
		   "<field name=\"VM\" start=\"17\" end=\"17\"/>"
		   "<field name=\"AC\" start=\"18\" end=\"18\"/>"
		   "<field name=\"VIF\" start=\"19\" end=\"19\"/>"
		   "<field name=\"VIP\" start=\"20\" end=\"20\"/>"
		   "<field name=\"ID\" start=\"21\" end=\"21\"/>"
		   "</flags>\n",
	[F_SSE] = "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
		  "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
		  "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
		  "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
		  "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
		  "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
		  "<union id=\"vec128\">"
		  "<field name=\"v4_float\" type=\"v4f\"/>"
		  "<field name=\"v2_double\" type=\"v2d\"/>"
		  "<field name=\"v16_int8\" type=\"v16i8\"/>"
		  "<field name=\"v8_int16\" type=\"v8i16\"/>"
		  "<field name=\"v4_int32\" type=\"v4i32\"/>"
		  "<field name=\"v2_int64\" type=\"v2i64\"/>"
		  "<field name=\"uint128\" type=\"uint128\"/>"
		  "</union>"
		  "<flags id=\"i386_mxcsr\" size=\"4\">"
		  "<field name=\"IE\" start=\"0\" end=\"0\"/>"
		  "<field name=\"DE\" start=\"1\" end=\"1\"/>"
		  "<field name=\"ZE\" start=\"2\" end=\"2\"/>"
		  "<field name=\"OE\" start=\"3\" end=\"3\"/>"
		  "<field name=\"UE\" start=\"4\" end=\"4\"/>"
		  "<field name=\"PE\" start=\"5\" end=\"5\"/>"
		  "<field name=\"DAZ\" start=\"6\" end=\"6\"/>"
		  "<field name=\"IM\" start=\"7\" end=\"7\"/>"
		  "<field name=\"DM\" start=\"8\" end=\"8\"/>"
		  "<field name=\"ZM\" start=\"9\" end=\"9\"/>"
		  "<field name=\"OM\" start=\"10\" end=\"10\"/>"
		  "<field name=\"UM\" start=\"11\" end=\"11\"/>"
		  "<field name=\"PM\" start=\"12\" end=\"12\"/>"
		  "<field name=\"FZ\" start=\"15\" end=\"15\"/>"
		  "</flags>\n",
};

int gdb_regs_target_xml(char **xml, size_t *len)
{
	FILE *f;
	char *buf = NULL;
	size_t size = 0;
	int feat = -1;

	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	fputs("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
	      "<target version=\"1.0\">\n<architecture>i386:x86-64</architecture>\n",
	      f);
	for (unsigned i = 0; i < ARRAY_SIZE(regs); i++) {
		const struct reg_desc *d = &regs[i];

		if (d->feature != feat) {
			if (feat >= 0)
				fputs("</feature>\n", f);
			feat = d->feature;
			fprintf(f, "<feature name=\"%s\">\n", feature_names[feat]);
			if (feature_types[feat])
				fputs(feature_types[feat], f);
		}
		fprintf(f, "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\" regnum=\"%u\"", d->name,
			d->size * 8u, d->type, i);
		if (d->group)
			fprintf(f, " group=\"%s\"", d->group);
		fputs("/>\n", f);
	}
	fputs("</feature>\n</target>\n", f);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*xml = buf;
	*len = size;
	return 0;
}
