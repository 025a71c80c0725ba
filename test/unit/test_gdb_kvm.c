/*
 * The gdb stub at the KVM layer: packets go into the real stub (vcpu/gdb/stub.c) over the real
 * target (vcpu/gdb/target.c), vCPU set (vcpu/vcpus.c) and KVM layer (core/kvm.c), and what
 * reaches KVM is checked at the ioctl itself: this test is linked with -Wl,--wrap=ioctl, and
 * ioctls on the fake vCPU fds below are answered here. So each Z/z packet's exact
 * KVM_SET_GUEST_DEBUG control and debug registers are checked, and a KVM_EXIT_DEBUG, as
 * vcpu_handle_exit sees it, must come out as the right stop reply.
 */
#include "test/unit/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "vcpu/gdb/packet.h"
#include "vcpu/gdb/regs.h"
#include "vcpu/gdb/stub.h"
#include "vcpu/gdb/target.h"
#include "vcpu/vcpu.h"

#define NR	2
#define FD_BASE 1000

#define DBG_HW	 (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP)
#define DBG_STEP (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)

static const struct logger quiet = {.level = LOG_LVL_OFF, .tag = "test"};

/* ---- the fake KVM ---- */

struct fake_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	uint64_t kgs;
	bool kgs_ok;
	struct kvm_guest_debug dbg;
	unsigned nr_dbg, nr_set_regs, nr_set_sregs, nr_set_fpu, nr_set_msr;
};

static struct fake_vcpu fv[NR];

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	struct fake_vcpu *f;
	struct kvm_msrs *m;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd < FD_BASE || fd >= FD_BASE + NR)
		return __real_ioctl(fd, req, arg);
	f = &fv[fd - FD_BASE];
	switch (req) {
	case KVM_GET_REGS:
		memcpy(arg, &f->regs, sizeof(f->regs));
		return 0;
	case KVM_SET_REGS:
		memcpy(&f->regs, arg, sizeof(f->regs));
		f->nr_set_regs++;
		return 0;
	case KVM_GET_SREGS:
		memcpy(arg, &f->sregs, sizeof(f->sregs));
		return 0;
	case KVM_SET_SREGS:
		memcpy(&f->sregs, arg, sizeof(f->sregs));
		f->nr_set_sregs++;
		return 0;
	case KVM_GET_FPU:
		memcpy(arg, &f->fpu, sizeof(f->fpu));
		return 0;
	case KVM_SET_FPU:
		memcpy(&f->fpu, arg, sizeof(f->fpu));
		f->nr_set_fpu++;
		return 0;
	case KVM_GET_MSRS:
		m = arg;
		if (m->nmsrs != 1 || m->entries[0].index != GDB_MSR_KERNEL_GS_BASE || !f->kgs_ok)
			return 0;
		m->entries[0].data = f->kgs;
		return 1;
	case KVM_SET_MSRS:
		m = arg;
		if (m->nmsrs != 1 || m->entries[0].index != GDB_MSR_KERNEL_GS_BASE)
			return 0;
		f->kgs = m->entries[0].data;
		f->nr_set_msr++;
		return 1;
	case KVM_SET_GUEST_DEBUG:
		memcpy(&f->dbg, arg, sizeof(f->dbg));
		f->nr_dbg++;
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

/* ---- a VM of NR vCPUs that never run, and a connected client ---- */

static struct guest_mem mem;
static struct vcpus set;
static struct gdb_target target;
static struct gdb_stub *stub;
static int efd = -1;
static enum vm_exit_reason exit_req;
static char out[1 << 17];
static size_t out_len;

static void request_exit(void *ctx, enum vm_exit_reason r)
{
	(void)ctx;
	exit_req = r;
}

static const struct vm_events events = {.request_exit = request_exit};

static void send_cb(void *ctx, const void *d, size_t n)
{
	(void)ctx;
	ck_assert_uint_le(out_len + n, sizeof(out));
	memcpy(out + out_len, d, n);
	out_len += n;
}

static void make_stub(uint32_t kvm_flags)
{
	struct gdb_stub_params p = {.nr_cpus = NR,
				    .kvm_debug_flags = kvm_flags,
				    .ops = &gdb_target_ops,
				    .target = &target,
				    .send = send_cb,
				    .log = &quiet};

	gdb_stub_destroy(stub);
	ck_assert_int_eq(gdb_stub_create(&p, &stub), 0);
	gdb_stub_connect(stub);
}

static void setup(void)
{
	const struct guest_region l[] = {{.gpa = 0, .size = 16ull << 20}};
	const struct vcpu_env env = {.mem = &mem, .log = &quiet, .ev = &events};

	memset(fv, 0, sizeof(fv));
	for (unsigned i = 0; i < NR; i++) {
		struct fake_vcpu *f = &fv[i];

		/* Every register distinct, per vCPU. */
		f->regs = (struct kvm_regs){.rax = 0x1111111111111100 + i,
					    .rbx = 0x2222222222222200 + i,
					    .rcx = 0x3333,
					    .rdx = 0x4444,
					    .rsi = 0x5555,
					    .rdi = 0x6666,
					    .rsp = 0x7777,
					    .rbp = 0x8888,
					    .r8 = 8,
					    .r9 = 9,
					    .r10 = 10,
					    .r11 = 11,
					    .r12 = 12,
					    .r13 = 13,
					    .r14 = 14,
					    .r15 = 0xf15,
					    .rip = 0xffffffff81000000 + i,
					    .rflags = 0x246};
		f->sregs.cs.selector = 0x10;
		f->sregs.ss.selector = 0x18;
		f->sregs.ds.selector = 0x18;
		f->sregs.es.selector = 0x18;
		f->sregs.fs.selector = 0;
		f->sregs.gs.selector = 0;
		f->sregs.fs.base = 0xf5ba5e;
		f->sregs.gs.base = 0x65ba5e + i;
		f->sregs.cr0 = 0x1; /* paging off: virtual is physical */
		f->sregs.cr2 = 0xc2;
		f->sregs.cr3 = 0x9000;
		f->sregs.cr4 = 0x20;
		f->sregs.cr8 = 0x8;
		f->sregs.efer = 0x500;
		f->fpu.fcw = 0x37f;
		f->fpu.fsw = 0x3800; /* TOP = 7 */
		f->fpu.mxcsr = 0x1f80;
		f->fpu.last_ip = 0x1234567890abcdefull;
		f->fpu.last_dp = 0xfedcba0987654321ull;
		f->fpu.last_opcode = 0x7ff;
		for (unsigned k = 0; k < 16; k++)
			f->fpu.xmm[k][0] = (uint8_t)(0x40 + k);
		f->kgs = 0x6b65726e656c;
		f->kgs_ok = true;
	}
	ck_assert_int_eq(guest_mem_create_regions(&mem, l, 1), 0);
	ck_assert_int_eq(vcpus_init(&set, &env), 0);
	set.v = calloc(NR, sizeof(*set.v));
	ck_assert_ptr_nonnull(set.v);
	set.nr = NR;
	for (unsigned i = 0; i < NR; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));

		ck_assert_ptr_nonnull(v);
		v->set = &set;
		v->id = i;
		v->fd = FD_BASE + (int)i;
		v->run = calloc(1, sizeof(struct kvm_run));
		v->run_size = sizeof(struct kvm_run);
		set.v[i] = v;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(efd, 0);
	vcpus_debug_init(&set, efd);
	target = (struct gdb_target){.vcpus = &set, .mem = &mem, .ev = &events};
	exit_req = VM_EXIT_NONE;
	out_len = 0;
	stub = NULL;
	make_stub(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP |
		  KVM_GUESTDBG_BLOCKIRQ);
}

static void teardown(void)
{
	gdb_stub_destroy(stub);
	for (unsigned i = 0; i < NR; i++) {
		free(set.v[i]->run);
		free(set.v[i]);
	}
	free(set.v);
	close(efd);
	guest_mem_destroy(&mem);
}

/* Sends raw bytes; returns what the stub wrote (NUL-terminated, static). */
static const char *raw(const void *bytes, size_t n)
{
	static char copy[sizeof(out) + 1];
	bool close = false;
	size_t taken;

	out_len = 0;
	taken = gdb_stub_input(stub, bytes, n, &close);
	ck_assert_uint_eq(taken, n);
	memcpy(copy, out, out_len);
	copy[out_len] = '\0';
	return copy;
}

/* Checks a "$payload#cs" frame and returns its payload (static). */
static const char *unframe(const char *f)
{
	static char payload[sizeof(out)];
	size_t n = strlen(f);
	uint8_t sum = 0;
	unsigned cs;

	ck_assert_msg(n >= 4 && f[0] == '$' && f[n - 3] == '#', "not a packet: %s", f);
	for (size_t i = 1; i < n - 3; i++)
		sum = (uint8_t)(sum + (uint8_t)f[i]);
	ck_assert_int_eq(sscanf(f + n - 2, "%2x", &cs), 1);
	ck_assert_uint_eq(cs, sum);
	memcpy(payload, f + 1, n - 4);
	payload[n - 4] = '\0';
	return payload;
}

/* One request packet: it must be acknowledged and answered with one packet, returned. */
static const char *req(const char *payload)
{
	char frame[GDB_FRAME_MAX];
	size_t n = gdb_frame(payload, strlen(payload), frame);
	const char *o = raw(frame, n);

	ck_assert_msg(o[0] == '+', "'%s' not acknowledged: %s", payload, o);
	return unframe(o + 1);
}

/* A request that resumes: acknowledged, nothing else yet. */
static void resume_req(const char *payload)
{
	char frame[GDB_FRAME_MAX];
	size_t n = gdb_frame(payload, strlen(payload), frame);

	ck_assert_str_eq(raw(frame, n), "+");
}

/* What the stub sends on its own (a stop reply after poll). */
static const char *poll_reply(void)
{
	static char copy[sizeof(out) + 1];

	out_len = 0;
	gdb_stub_poll(stub);
	memcpy(copy, out, out_len);
	copy[out_len] = '\0';
	return copy[0] ? unframe(copy) : "";
}

/* vCPU i leaves KVM_RUN with KVM_EXIT_DEBUG, as KVM fills it in. */
static void debug_exit(unsigned i, uint32_t exception, uint64_t dr6, uint64_t pc)
{
	struct kvm_run *run = set.v[i]->run;
	uint64_t n = 0;

	run->exit_reason = KVM_EXIT_DEBUG;
	run->debug.arch.exception = exception;
	run->debug.arch.dr6 = dr6;
	run->debug.arch.pc = pc;
	ck_assert_int_eq(vcpu_handle_exit(set.v[i]), VM_EXIT_NONE);
	/* The debugger is told, and every vCPU is held. */
	ck_assert_int_eq(eventfd_drain(efd, &n), 0);
	ck_assert_uint_ge(n, 1);
	for (unsigned k = 0; k < NR; k++)
		ck_assert(set.v[k]->debug_held);
}

static void expect_debug(unsigned i, uint32_t control, uint64_t dr0, uint64_t dr1, uint64_t dr2,
			 uint64_t dr3, uint64_t dr7)
{
	const struct kvm_guest_debug *d = &fv[i].dbg;

	ck_assert_msg(d->control == control, "vcpu%u control 0x%x, expected 0x%x", i, d->control,
		      control);
	ck_assert_uint_eq(d->arch.debugreg[0], dr0);
	ck_assert_uint_eq(d->arch.debugreg[1], dr1);
	ck_assert_uint_eq(d->arch.debugreg[2], dr2);
	ck_assert_uint_eq(d->arch.debugreg[3], dr3);
	ck_assert_uint_eq(d->arch.debugreg[4], 0);
	ck_assert_uint_eq(d->arch.debugreg[5], 0);
	ck_assert_uint_eq(d->arch.debugreg[6], 0);
	ck_assert_msg(d->arch.debugreg[7] == dr7, "vcpu%u DR7 0x%llx, expected 0x%llx", i,
		      (unsigned long long)d->arch.debugreg[7], (unsigned long long)dr7);
}

static void expect_debug_all(uint32_t control, uint64_t dr0, uint64_t dr1, uint64_t dr2,
			     uint64_t dr3, uint64_t dr7)
{
	for (unsigned i = 0; i < NR; i++)
		expect_debug(i, control, dr0, dr1, dr2, dr3, dr7);
}

/* ---- breakpoints and watchpoints ---- */

#define BP    0xffffffff81000000ull
#define WATCH 0xffffffff82a00000ull

START_TEST(z_packets_program_the_debug_registers)
{
	/* DR7: bit 10 (reserved, 1), GE (bit 9), then per slot i: G_i (bit 2i+1), R/W_i (bits
	 * 16+4i), LEN_i (bits 18+4i); execute 00, write 01, read/write 11; 1 byte 00, 2 bytes
	 * 01, 4 bytes 11, 8 bytes 10. */
	const uint64_t s0 = 0x600 | 0x2;
	const uint64_t s1 = 0x8 | (1ull << 20) | (2ull << 22);
	const uint64_t s2 = 0x20 | (3ull << 24) | (3ull << 26);
	const uint64_t s3 = 0x80 | (1ull << 28) | (1ull << 30);

	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	expect_debug_all(DBG_HW, BP, 0, 0, 0, s0);
	ck_assert_str_eq(req("Z2,ffffffff82a00000,8"), "OK");
	expect_debug_all(DBG_HW, BP, WATCH, 0, 0, s0 | s1);
	ck_assert_str_eq(req("Z4,ffffffff82a00010,4"), "OK");
	expect_debug_all(DBG_HW, BP, WATCH, WATCH + 0x10, 0, s0 | s1 | s2);
	/* 6 bytes at an odd address need 1 + 2 + 2 + 1: more than the one slot left. */
	ck_assert_str_eq(req("Z2,1001,6"), "E1c");
	expect_debug_all(DBG_HW, BP, WATCH, WATCH + 0x10, 0, s0 | s1 | s2);
	ck_assert_str_eq(req("Z2,1002,2"), "OK");
	expect_debug_all(DBG_HW, BP, WATCH, WATCH + 0x10, 0x1002, s0 | s1 | s2 | s3);
	ck_assert_str_eq(req("Z1,ffffffff81000100,1"), "E1c");
	/* The same breakpoint twice shares its slot until removed twice. */
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	ck_assert_str_eq(req("z1,ffffffff81000000,1"), "OK");
	expect_debug_all(DBG_HW, BP, WATCH, WATCH + 0x10, 0x1002, s0 | s1 | s2 | s3);
	ck_assert_str_eq(req("z1,ffffffff81000000,1"), "OK");
	expect_debug_all(DBG_HW, 0, WATCH, WATCH + 0x10, 0x1002, 0x600 | s1 | s2 | s3);
	ck_assert_str_eq(req("z1,ffffffff81000000,1"), "E02");
	ck_assert_str_eq(req("z2,ffffffff82a00010,4"), "E02"); /* it is an access watchpoint */
	ck_assert_str_eq(req("z4,ffffffff82a00010,4"), "OK");
	ck_assert_str_eq(req("z2,ffffffff82a00000,8"), "OK");
	expect_debug_all(DBG_HW, 0, 0, 0, 0x1002, 0x600 | s3);
	ck_assert_str_eq(req("z2,1002,2"), "OK");
	/* Nothing left: the guest gets its own debug registers back. */
	expect_debug_all(0, 0, 0, 0, 0, 0);
}
END_TEST

START_TEST(watched_ranges_split_into_aligned_pieces)
{
	/* 7 bytes at 0x2001: 1 at 0x2001, 2 at 0x2002, 4 at 0x2004. */
	ck_assert_str_eq(req("Z2,2001,7"), "OK");
	expect_debug_all(DBG_HW, 0x2001, 0x2002, 0x2004, 0,
			 0x600 | 0x2 | (1ull << 16) | (0ull << 18) | 0x8 | (1ull << 20) |
				 (1ull << 22) | 0x20 | (1ull << 24) | (3ull << 26));
	ck_assert_str_eq(req("z2,2001,7"), "OK");
	expect_debug_all(0, 0, 0, 0, 0, 0);
	/* 32 aligned bytes take all four slots; 33 do not fit. */
	ck_assert_str_eq(req("Z4,3000,21"), "E1c");
	ck_assert_str_eq(req("Z4,3000,20"), "OK");
	ck_assert_uint_eq(fv[1].dbg.arch.debugreg[3], 0x3018);
	ck_assert_str_eq(req("z4,3000,20"), "OK");
	ck_assert_str_eq(req("Z2,0,0"), "E16");		       /* nothing to watch */
	ck_assert_str_eq(req("Z2,ffffffffffffffff,2"), "E16"); /* wraps */
}
END_TEST

START_TEST(unsupported_breakpoint_kinds)
{
	unsigned before = fv[0].nr_dbg;

	/* Software breakpoints: an error, so gdb does not plant int3 itself. */
	ck_assert_str_eq(req("Z0,ffffffff81000000,1"), "E5f");
	/* Read watchpoints: "unsupported", so gdb falls back to an access watchpoint. */
	ck_assert_str_eq(req("Z3,ffffffff82a00000,8"), "");
	ck_assert_str_eq(req("Z9,0,1"), "");
	ck_assert_str_eq(req("Z1,zz,1"), "E16");
	ck_assert_str_eq(req("Z1,10"), "E16");
	ck_assert_str_eq(req("Z1"), "E16");
	ck_assert_uint_eq(fv[0].nr_dbg, before);
}
END_TEST

/* ---- resuming and stopping ---- */

START_TEST(step_sets_singlestep_on_its_vcpu_only)
{
	ck_assert_str_eq(req("vCont?"), "vCont;c;C;s;S");
	resume_req("vCont;s:1;c");
	expect_debug(0, DBG_STEP | KVM_GUESTDBG_BLOCKIRQ, 0, 0, 0, 0, 0);
	expect_debug(1, 0, 0, 0, 0, 0, 0);
	ck_assert(!set.v[0]->debug_held);
	ck_assert(!set.v[1]->debug_held);
	debug_exit(0, 1, 0xffff4ff0, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:1;");

	/* With a breakpoint, the stepping vCPU keeps it. Only thread 2 runs. */
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	resume_req("vCont;s:2");
	expect_debug(1, DBG_STEP | KVM_GUESTDBG_BLOCKIRQ | KVM_GUESTDBG_USE_HW_BP, BP, 0, 0, 0,
		     0x602);
	expect_debug(0, DBG_HW, BP, 0, 0, 0, 0x602);
	ck_assert(set.v[0]->debug_held);
	ck_assert(!set.v[1]->debug_held);
	debug_exit(1, 1, 0x4000, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:2;");
	ck_assert_str_eq(req("qC"), "QC2");
}
END_TEST

START_TEST(step_without_blockirq)
{
	make_stub(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP);
	out_len = 0;
	resume_req("vCont;s:1");
	expect_debug(0, DBG_STEP, 0, 0, 0, 0, 0);
	ck_assert(set.v[1]->debug_held);
}
END_TEST

START_TEST(legacy_step_and_continue)
{
	/* s: the current thread steps, the others continue; Hc naming a thread keeps them. */
	resume_req("s");
	expect_debug(0, DBG_STEP | KVM_GUESTDBG_BLOCKIRQ, 0, 0, 0, 0, 0);
	ck_assert(!set.v[1]->debug_held);
	debug_exit(0, 1, 0x4000, 0);
	ck_assert_str_eq(poll_reply(), "T05thread:1;");
	ck_assert_str_eq(req("Hc2"), "OK");
	resume_req("s");
	expect_debug(1, DBG_STEP | KVM_GUESTDBG_BLOCKIRQ, 0, 0, 0, 0, 0);
	expect_debug(0, 0, 0, 0, 0, 0, 0);
	ck_assert(set.v[0]->debug_held);
	ck_assert(!set.v[1]->debug_held);
	debug_exit(1, 1, 0x4000, 0);
	ck_assert_str_eq(poll_reply(), "T05thread:2;");
	/* c ADDR resumes there. */
	ck_assert_str_eq(req("Hc-1"), "OK");
	resume_req("c100200");
	ck_assert_uint_eq(fv[1].regs.rip, 0x100200);
	ck_assert_uint_eq(fv[0].regs.rip, BP);
	ck_assert(!set.v[0]->debug_held);
	ck_assert(!set.v[1]->debug_held);
	ck_assert_str_eq(req("vCont;x"), "E10"); /* running: only Ctrl-C counts */
}
END_TEST

START_TEST(debug_exits_become_stop_replies)
{
	ck_assert_str_eq(req("qSupported:multiprocess+;hwbreak+;xmlRegisters=i386"),
			 "PacketSize=4000;qXfer:features:read+;hwbreak+");
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	ck_assert_str_eq(req("Z2,ffffffff82a00000,8"), "OK");
	ck_assert_str_eq(req("Z4,ffffffff82a00010,4"), "OK");
	resume_req("vCont;c");
	ck_assert_str_eq(poll_reply(), ""); /* running: nothing to say */
	/* B0 (and the bits KVM reports set in DR6): the execute breakpoint. */
	debug_exit(0, 1, 0xffff0ff1, BP);
	ck_assert_str_eq(poll_reply(), "T05thread:1;hwbreak:;");
	ck_assert_str_eq(req("?"), "T05thread:1;hwbreak:;");
	resume_req("vCont;c");
	debug_exit(1, 1, 0xffff0ff2, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:2;watch:ffffffff82a00000;");
	/* g now reads the stopped thread. */
	ck_assert_str_eq(req("qC"), "QC2");
	resume_req("vCont;c");
	debug_exit(1, 1, 0xffff0ff4, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:2;awatch:ffffffff82a00010;");
	/* A data hit wins over the step it ended; an unknown slot is no hit. */
	resume_req("vCont;s:1;c");
	debug_exit(0, 1, 0xffff0ff0 | 0x4000 | 0x2, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:1;watch:ffffffff82a00000;");
	resume_req("vCont;c");
	debug_exit(0, 1, 0xffff0ff8, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:1;");
	/* #BP (a software breakpoint) is not ours to explain. */
	resume_req("vCont;c");
	debug_exit(1, 3, 0, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:2;");
}
END_TEST

START_TEST(hwbreak_only_for_clients_that_know_it)
{
	ck_assert_str_eq(req("qSupported:swbreak+"),
			 "PacketSize=4000;qXfer:features:read+;hwbreak+");
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	resume_req("c");
	debug_exit(0, 1, 0xffff0ff1, BP);
	ck_assert_str_eq(poll_reply(), "T05thread:1;");
}
END_TEST

START_TEST(a_watch_hit_left_over_is_reported_at_resume)
{
	ck_assert_str_eq(req("qSupported:hwbreak+"),
			 "PacketSize=4000;qXfer:features:read+;hwbreak+");
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	ck_assert_str_eq(req("Z2,ffffffff82a00000,8"), "OK");
	resume_req("vCont;c");
	/* Both vCPUs stop at once: one report, the other kept. */
	debug_exit(0, 1, 0xffff0ff1, BP);
	debug_exit(1, 1, 0xffff0ff2, 0x1000);
	ck_assert_str_eq(poll_reply(), "T05thread:1;hwbreak:;");
	/* Resuming thread 2 reports its watchpoint at once, and runs nothing. */
	fv[0].nr_dbg = 0;
	ck_assert_str_eq(req("vCont;c"), "T05thread:2;watch:ffffffff82a00000;");
	ck_assert_uint_eq(fv[0].nr_dbg, 0);
	ck_assert(set.v[0]->debug_held);
	ck_assert(set.v[1]->debug_held);
	resume_req("vCont;c");
	ck_assert(!set.v[0]->debug_held);
	ck_assert(!set.v[1]->debug_held);
	/* An execute breakpoint left over is not: the vCPU meets it again. The vCPU after the
	 * last one reported is looked at first. */
	debug_exit(0, 1, 0xffff0ff1, BP);
	debug_exit(1, 1, 0xffff0ff1, BP);
	ck_assert_str_eq(poll_reply(), "T05thread:2;hwbreak:;");
	resume_req("vCont;c");
	ck_assert(!set.v[0]->debug_held);
}
END_TEST

START_TEST(ctrl_c_stops_every_vcpu)
{
	const uint8_t intr = 0x03;

	ck_assert_str_eq(raw(&intr, 1), ""); /* stopped already: nothing to interrupt */
	resume_req("vCont;c");
	ck_assert(!set.v[0]->debug_held && !set.v[1]->debug_held);
	/* No vCPU thread runs here, so they count as stopped as soon as they are held. */
	ck_assert_str_eq(unframe(raw(&intr, 1)), "T02thread:1;");
	ck_assert(set.v[0]->debug_held && set.v[1]->debug_held);
	ck_assert_str_eq(req("Hg2"), "OK");
	resume_req("c");
	ck_assert_str_eq(unframe(raw(&intr, 1)), "T02thread:2;");
}
END_TEST

START_TEST(detach_kill_and_disconnect)
{
	ck_assert_str_eq(req("Z1,ffffffff81000000,1"), "OK");
	ck_assert_str_eq(req("D"), "OK");
	expect_debug_all(0, 0, 0, 0, 0, 0);
	ck_assert(!set.v[0]->debug_held && !set.v[1]->debug_held);
	gdb_stub_disconnect(stub); /* the server closes after D: nothing more happens */
	ck_assert(!set.v[0]->debug_held);

	/* A new client stops the running guest before reading its packets. */
	out_len = 0;
	gdb_stub_connect(stub);
	ck_assert(set.v[0]->debug_held && set.v[1]->debug_held);
	ck_assert(!gdb_stub_busy(stub));
	ck_assert_str_eq(req("?"), "T05thread:1;");
	ck_assert_str_eq(req("Z2,ffffffff82a00000,8"), "OK");
	resume_req("vCont;c");
	/* Gone while the guest runs: it is stopped, cleaned up, and let go. */
	gdb_stub_disconnect(stub);
	expect_debug_all(0, 0, 0, 0, 0, 0);
	ck_assert(!set.v[0]->debug_held && !set.v[1]->debug_held);

	gdb_stub_connect(stub);
	resume_req("k"); /* no reply: the VM ends */
	ck_assert_int_eq(exit_req, VM_EXIT_STOP);
}
END_TEST

START_TEST(vm_exit_tells_a_waiting_client)
{
	out_len = 0;
	gdb_stub_vm_exit(stub, 0); /* stopped: gdb is not waiting */
	ck_assert_uint_eq(out_len, 0);
	resume_req("vCont;c");
	out_len = 0;
	gdb_stub_vm_exit(stub, 32);
	out[out_len] = '\0';
	ck_assert_str_eq(unframe(out), "W20");
}
END_TEST

/* ---- registers ---- */

static uint64_t hex_le(const char *hex, unsigned bytes)
{
	uint8_t b[8];

	ck_assert_int_eq(gdb_hex_decode(hex, 2 * bytes, b), 0);
	return get_le(b, bytes);
}

START_TEST(g_has_gdbs_amd64_layout)
{
	const char *g = req("g");

	ck_assert_uint_eq(strlen(g), 2 * 608);
	ck_assert_uint_eq(gdb_regs_size(), 608);
	ck_assert_uint_eq(hex_le(g + 2 * 0, 8), 0x1111111111111100); /* rax */
	ck_assert_uint_eq(hex_le(g + 2 * 8, 8), 0x2222222222222200); /* rbx */
	ck_assert_uint_eq(hex_le(g + 2 * 48, 8), 0x8888);	     /* rbp */
	ck_assert_uint_eq(hex_le(g + 2 * 56, 8), 0x7777);	     /* rsp */
	ck_assert_uint_eq(hex_le(g + 2 * 120, 8), 0xf15);	     /* r15 */
	ck_assert_uint_eq(hex_le(g + 2 * 128, 8), BP);		     /* rip */
	ck_assert_uint_eq(hex_le(g + 2 * 136, 4), 0x246);	     /* eflags */
	ck_assert_uint_eq(hex_le(g + 2 * 140, 4), 0x10);	     /* cs */
	ck_assert_uint_eq(hex_le(g + 2 * 144, 4), 0x18);	     /* ss */
	ck_assert_uint_eq(hex_le(g + 2 * 244, 4), 0x37f);	     /* fctrl */
	ck_assert_uint_eq(hex_le(g + 2 * 248, 4), 0x3800);	     /* fstat */
	ck_assert_uint_eq(hex_le(g + 2 * 252, 4), 0xffff);	     /* ftag: all empty */
	ck_assert_uint_eq(hex_le(g + 2 * 256, 4), 0x12345678);	     /* fiseg */
	ck_assert_uint_eq(hex_le(g + 2 * 260, 4), 0x90abcdef);	     /* fioff */
	ck_assert_uint_eq(hex_le(g + 2 * 264, 4), 0xfedcba09);	     /* foseg */
	ck_assert_uint_eq(hex_le(g + 2 * 268, 4), 0x87654321);	     /* fooff */
	ck_assert_uint_eq(hex_le(g + 2 * 272, 4), 0x7ff);	     /* fop */
	ck_assert_uint_eq(hex_le(g + 2 * (276 + 16 * 3), 1), 0x43);  /* xmm3 */
	ck_assert_uint_eq(hex_le(g + 2 * 532, 4), 0x1f80);	     /* mxcsr */
	ck_assert_uint_eq(hex_le(g + 2 * 536, 8), 0xf5ba5e);	     /* fs_base */
	ck_assert_uint_eq(hex_le(g + 2 * 544, 8), 0x65ba5e);	     /* gs_base */
	ck_assert_uint_eq(hex_le(g + 2 * 552, 8), 0x6b65726e656c);   /* k_gs_base */
	ck_assert_uint_eq(hex_le(g + 2 * 576, 8), 0x9000);	     /* cr3 */
	ck_assert_uint_eq(hex_le(g + 2 * 600, 8), 0x500);	     /* efer */
	/* Thread 2's are its own. */
	ck_assert_str_eq(req("Hg2"), "OK");
	g = req("g");
	ck_assert_uint_eq(hex_le(g, 8), 0x1111111111111101);
	ck_assert_uint_eq(hex_le(g + 2 * 128, 8), BP + 1);
	/* A register KVM does not give is unavailable, not zero. */
	fv[1].kgs_ok = false;
	g = req("g");
	ck_assert_mem_eq(g + 2 * 552, "xxxxxxxxxxxxxxxx", 16);
	ck_assert_str_eq(req("p3b"), "xxxxxxxxxxxxxxxx");
}
END_TEST

START_TEST(x87_tags_from_the_abridged_ones)
{
	const char *g;

	/* TOP = 7: physical register 7 is ST0, 0 is ST1, 1 is ST2, 2 is ST3. */
	fv[0].fpu.ftwx = 0x87;
	fv[0].fpu.fpr[0][7] = 0x80; /* ST0: integer bit and exponent 0x3fff: valid */
	fv[0].fpu.fpr[0][8] = 0xff;
	fv[0].fpu.fpr[0][9] = 0x3f;
	/* ST1: all zero: zero */
	fv[0].fpu.fpr[2][8] = 0xff; /* ST2: exponent 0x7fff: special */
	fv[0].fpu.fpr[2][9] = 0x7f;
	g = req("g");
	/* R0 (ST1) zero 01, R1 (ST2) special 10, R2 (ST3) zero 01, R3-R6 empty 11, R7 (ST0)
	 * valid 00 */
	ck_assert_uint_eq(hex_le(g + 2 * 252, 4), 0x3fd9);
	/* and back: only valid or empty survives in the abridged form (R6, R7 not empty) */
	ck_assert_str_eq(req("P22=ff0f0000"), "OK");
	ck_assert_uint_eq(fv[0].fpu.ftwx, 0xc0);
	ck_assert_uint_eq(fv[0].nr_set_fpu, 1);
}
END_TEST

START_TEST(p_and_P_reach_the_right_kvm_call)
{
	ck_assert_str_eq(req("p0"), "0011111111111111");
	ck_assert_str_eq(req("p10"), "00000081ffffffff");
	/* rax: KVM_SET_REGS with it, nothing else. */
	ck_assert_str_eq(req("P0=8877665544332211"), "OK");
	ck_assert_uint_eq(fv[0].regs.rax, 0x1122334455667788);
	ck_assert_uint_eq(fv[0].regs.rbx, 0x2222222222222200);
	ck_assert_uint_eq(fv[0].nr_set_regs, 1);
	ck_assert_uint_eq(fv[0].nr_set_sregs + fv[0].nr_set_fpu + fv[0].nr_set_msr, 0);
	ck_assert_uint_eq(fv[1].nr_set_regs, 0);
	/* eflags: 32 bits of rflags */
	ck_assert_str_eq(req("P11=03020000"), "OK");
	ck_assert_uint_eq(fv[0].regs.rflags, 0x203);
	/* the same selector is no change; another needs a descriptor: refused */
	ck_assert_str_eq(req("P12=10000000"), "OK");
	ck_assert_str_eq(req("P12=08000000"), "E5f");
	ck_assert_uint_eq(fv[0].sregs.cs.selector, 0x10);
	ck_assert_uint_eq(fv[0].nr_set_sregs, 0);
	/* fs_base (39), cr3 (3e): KVM_SET_SREGS */
	ck_assert_str_eq(req("P39=efbeadde00000000"), "OK");
	ck_assert_uint_eq(fv[0].sregs.fs.base, 0xdeadbeef);
	ck_assert_str_eq(req("P3e=00a0000000000000"), "OK");
	ck_assert_uint_eq(fv[0].sregs.cr3, 0xa000);
	ck_assert_uint_eq(fv[0].nr_set_sregs, 2);
	/* k_gs_base (3b): the MSR */
	ck_assert_str_eq(req("P3b=0100000000000080"), "OK");
	ck_assert_uint_eq(fv[0].kgs, 0x8000000000000001);
	ck_assert_uint_eq(fv[0].nr_set_msr, 1);
	/* xmm1 (29), mxcsr (38): KVM_SET_FPU */
	ck_assert_str_eq(req("P29=000102030405060708090a0b0c0d0e0f"), "OK");
	ck_assert_uint_eq(fv[0].fpu.xmm[1][15], 0x0f);
	ck_assert_str_eq(req("P38=801f0000"), "OK"); /* unchanged */
	ck_assert_uint_eq(fv[0].nr_set_fpu, 1);
	/* fioff (24): the low half of the FPU ip */
	ck_assert_str_eq(req("P24=44332211"), "OK");
	ck_assert_uint_eq(fv[0].fpu.last_ip, 0x1234567811223344ull);
	/* malformed */
	ck_assert_str_eq(req("P0=11"), "E16");
	ck_assert_str_eq(req("P42=0000000000000000"), "E16");
	ck_assert_str_eq(req("P0=zz00000000000000"), "E16");
	ck_assert_str_eq(req("P27=ffff0100"), "E16"); /* fop has 11 bits */
	ck_assert_str_eq(req("p42"), "E16");
	ck_assert_str_eq(req("p"), "E16");
}
END_TEST

START_TEST(G_writes_back_only_what_changed)
{
	char g[2 * 608 + 2];

	snprintf(g, sizeof(g), "G%s", req("g"));
	memcpy(g + 1 + 2 * 104, "0d0d0d0d0d0d0d0d", 16); /* r13 */
	ck_assert_str_eq(req(g), "OK");
	ck_assert_uint_eq(fv[0].regs.r13, 0x0d0d0d0d0d0d0d0d);
	ck_assert_uint_eq(fv[0].regs.r12, 12);
	ck_assert_uint_eq(fv[0].nr_set_regs, 1);
	ck_assert_uint_eq(fv[0].nr_set_sregs + fv[0].nr_set_fpu + fv[0].nr_set_msr, 0);
	/* The length must be exact. */
	g[strlen(g) - 2] = '\0';
	ck_assert_str_eq(req(g), "E16");
}
END_TEST

/* ---- memory ---- */

START_TEST(memory_through_the_current_vcpus_page_tables)
{
	uint8_t b[8];

	/* Paging off: virtual is physical. */
	ck_assert_int_eq(guest_mem_write(&mem, 0x1000, "\x01\x02\x03\x04", 4), 0);
	ck_assert_str_eq(req("m1000,4"), "01020304");
	ck_assert_str_eq(req("M1002,3:aabbcc"), "OK");
	ck_assert_int_eq(guest_mem_read(&mem, 0x1000, b, 6), 0);
	ck_assert_mem_eq(b, "\x01\x02\xaa\xbb\xcc\x00", 6);
	ck_assert_str_eq(req("X1000,0:"), "OK"); /* gdb's probe for X */
	{
		/* binary, with the four escaped bytes and a NUL */
		const char pkt[] = "X1008,5:}\x03}\x04}]}\x0a\x00";
		char frame[64];
		size_t n = gdb_frame(pkt, sizeof(pkt) - 1, frame);

		ck_assert_str_eq(unframe(raw(frame, n) + 1), "OK");
		ck_assert_int_eq(guest_mem_read(&mem, 0x1008, b, 5), 0);
		ck_assert_mem_eq(b, "#$}*\0", 5);
	}
	/* RAM ends at 16 MiB: a read stops there, a write that would cross it does nothing. */
	ck_assert_str_eq(req("mfffffe,4"), "0000");
	ck_assert_str_eq(req("m1000000,4"), "E0e");
	ck_assert_str_eq(req("Mfffffe,4:01020304"), "E0e");
	ck_assert_int_eq(guest_mem_read(&mem, 0xfffffe, b, 2), 0);
	ck_assert_mem_eq(b, "\0\0", 2);
	ck_assert_str_eq(req("m0,0"), "");
	ck_assert_str_eq(req("M1000,2:01"), "E16");
	ck_assert_str_eq(req("M1000,1:0g"), "E16");
	ck_assert_str_eq(req("m1000"), "E16");

	/* vCPU 2 pages: 4 levels, 0xffffffff81000000 -> 0x200000 (2 MiB page). */
	fv[1].sregs.cr0 = 0x80000001;
	fv[1].sregs.cr4 = 0x20;
	fv[1].sregs.efer = 0x500;
	fv[1].sregs.cr3 = 0x10000;
	put_le(b, 0x11000 | 1, 8);
	ck_assert_int_eq(guest_mem_write(&mem, 0x10000 + 511 * 8, b, 8), 0);
	put_le(b, 0x12000 | 1, 8);
	ck_assert_int_eq(guest_mem_write(&mem, 0x11000 + 510 * 8, b, 8), 0);
	put_le(b, 0x200000 | 0x81, 8);
	ck_assert_int_eq(guest_mem_write(&mem, 0x12000 + 8 * 8, b, 8), 0);
	ck_assert_int_eq(guest_mem_write(&mem, 0x200010, "\xde\xad", 2), 0);
	ck_assert_str_eq(req("mffffffff81000010,2"), "E0e"); /* vCPU 1 has no paging */
	ck_assert_str_eq(req("Hg2"), "OK");
	ck_assert_str_eq(req("mffffffff81000010,2"), "dead");
	ck_assert_str_eq(req("Mffffffff81000012,1:be"), "OK");
	ck_assert_int_eq(guest_mem_read(&mem, 0x200012, b, 1), 0);
	ck_assert_uint_eq(b[0], 0xbe);
	/* the end of the mapping: the read stops at it */
	ck_assert_uint_eq(strlen(req("mffffffff811ffffe,10")), 4);
}
END_TEST

/* ---- threads, queries, the protocol itself ---- */

START_TEST(threads)
{
	ck_assert_str_eq(req("qfThreadInfo"), "m1,2");
	ck_assert_str_eq(req("qsThreadInfo"), "l");
	ck_assert_str_eq(req("qC"), "QC1");
	ck_assert_str_eq(req("T1"), "OK");
	ck_assert_str_eq(req("T2"), "OK");
	ck_assert_str_eq(req("T3"), "E03");
	ck_assert_str_eq(req("T0"), "E03");
	ck_assert_str_eq(req("Hg0"), "OK");
	ck_assert_str_eq(req("Hg-1"), "OK");
	ck_assert_str_eq(req("Hg3"), "E16");
	ck_assert_str_eq(req("Hx1"), "E16");
	ck_assert_str_eq(req("Hg2"), "OK");
	ck_assert_str_eq(req("qC"), "QC2");
	/* "vCPU 1" */
	ck_assert_str_eq(req("qThreadExtraInfo,2"), "764350552031");
	ck_assert_str_eq(req("qThreadExtraInfo,9"), "E03");
	ck_assert_str_eq(req("qAttached"), "1");
	ck_assert_str_eq(req("qSymbol::"), "OK");
	ck_assert_str_eq(req("qTStatus"), "");
	ck_assert_str_eq(req("vMustReplyEmpty"), "");
	ck_assert_str_eq(req("!"), "");
	ck_assert_str_eq(req(""), "");
	ck_assert_str_eq(req("vCont;s:3"), "E16");
	ck_assert_str_eq(req("vCont;r0,1"), "E16");
	ck_assert_str_eq(req("vCont;t"), "E16"); /* nothing would run */
}
END_TEST

START_TEST(target_description)
{
	static const char *const core[] = {
		"rax", "rbx", "rcx",   "rdx",	"rsi",	"rdi",	 "rbp",	  "rsp",    "r8",    "r9",
		"r10", "r11", "r12",   "r13",	"r14",	"r15",	 "rip",	  "eflags", "cs",    "ss",
		"ds",  "es",  "fs",    "gs",	"st0",	"st1",	 "st2",	  "st3",    "st4",   "st5",
		"st6", "st7", "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg",  "fooff", "fop"};
	char *xml, *got = calloc(1, 1 << 16);
	size_t len, have = 0, bits = 0;
	unsigned nregs = 0;
	const char *p;

	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(gdb_regs_target_xml(&xml, &len), 0);
	/* In pieces, as gdb reads it. */
	for (;;) {
		char q[64];
		const char *r;

		snprintf(q, sizeof(q), "qXfer:features:read:target.xml:%zx,200", have);
		r = req(q);
		ck_assert(r[0] == 'm' || r[0] == 'l');
		ck_assert_uint_le(strlen(r + 1), 0x200);
		memcpy(got + have, r + 1, strlen(r + 1));
		have += strlen(r + 1);
		if (r[0] == 'l')
			break;
	}
	ck_assert_uint_eq(have, len);
	ck_assert_mem_eq(got, xml, len);
	ck_assert_ptr_nonnull(strstr(xml, "<architecture>i386:x86-64</architecture>"));
	ck_assert_ptr_nonnull(strstr(xml, "<feature name=\"org.gnu.gdb.i386.core\">"));
	ck_assert_ptr_nonnull(strstr(xml, "<feature name=\"org.gnu.gdb.i386.sse\">"));
	ck_assert_ptr_nonnull(strstr(xml, "<feature name=\"org.gnu.gdb.i386.segments\">"));
	/* Registers: gdb's core names first and in order, numbered from 0, sizes adding up. */
	for (p = strstr(xml, "<reg "); p; p = strstr(p + 1, "<reg ")) {
		char name[32];
		unsigned size, num;

		ck_assert_int_eq(sscanf(p, "<reg name=\"%31[^\"]\" bitsize=\"%u\"", name, &size),
				 2);
		ck_assert_int_eq(sscanf(strstr(p, "regnum="), "regnum=\"%u\"", &num), 1);
		ck_assert_uint_eq(num, nregs);
		if (nregs < ARRAY_SIZE(core))
			ck_assert_str_eq(name, core[nregs]);
		ck_assert_uint_eq(size, 8 * gdb_reg_size(nregs));
		bits += size;
		nregs++;
	}
	ck_assert_uint_eq(nregs, gdb_regs_count());
	ck_assert_uint_eq(bits / 8, gdb_regs_size());
	ck_assert_str_eq(req("qXfer:features:read:target.xml:ffffff,10"), "E16");
	ck_assert_str_eq(req("qXfer:features:read:other.xml:0,10"), "E02");
	{
		char q[64];

		snprintf(q, sizeof(q), "qXfer:features:read:target.xml:%zx,10", len);
		ck_assert_str_eq(req(q), "l");
	}
	free(xml);
	free(got);
}
END_TEST

START_TEST(bad_input_gets_naks_and_the_stub_goes_on)
{
	static char big[GDB_PACKET_MAX + 16];
	const char *o;

	ck_assert_str_eq(raw("$g#00", 5), "-");
	ck_assert_str_eq(raw("garbage", 7), "");
	big[0] = '$';
	memset(big + 1, 'm', sizeof(big) - 4);
	memcpy(big + sizeof(big) - 3, "#00", 3);
	ck_assert_str_eq(raw(big, sizeof(big)), "-");
	/* A '-' repeats the last packet. */
	o = req("qC");
	ck_assert_str_eq(o, "QC1");
	ck_assert_str_eq(raw("-", 1), "$QC1#c5");
	ck_assert_str_eq(raw("+", 1), "");
	ck_assert_str_eq(req("?"), "T05thread:1;");
}
END_TEST

START_TEST(input_waits_while_the_vcpus_stop)
{
	static const uint8_t in[] = "\x03$?#3f";
	bool close;
	size_t n;

	resume_req("vCont;c");
	/* Pretend vCPU 0's thread is still inside KVM_RUN. */
	set.nr_started = 1;
	out_len = 0;
	n = gdb_stub_input(stub, in, sizeof(in) - 1, &close);
	ck_assert_uint_eq(n, 1); /* the '?' waits */
	ck_assert(gdb_stub_busy(stub));
	ck_assert_uint_eq(out_len, 0);
	ck_assert_uint_eq(gdb_stub_input(stub, in + 1, sizeof(in) - 2, &close), 0);
	set.nr_parked = 1; /* it parks */
	ck_assert_str_eq(poll_reply(), "T02thread:1;");
	ck_assert(!gdb_stub_busy(stub));
	out_len = 0;
	ck_assert_uint_eq(gdb_stub_input(stub, in + 1, sizeof(in) - 2, &close), sizeof(in) - 2);
	out[out_len] = '\0';
	ck_assert_str_eq(unframe(out + 1), "T02thread:1;");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gdb_kvm");
	TCase *bp = tcase_create("breakpoints");
	TCase *run = tcase_create("running");
	TCase *regs = tcase_create("registers");
	TCase *proto = tcase_create("protocol");

	tcase_add_checked_fixture(bp, setup, teardown);
	tcase_add_test(bp, z_packets_program_the_debug_registers);
	tcase_add_test(bp, watched_ranges_split_into_aligned_pieces);
	tcase_add_test(bp, unsupported_breakpoint_kinds);
	suite_add_tcase(s, bp);

	tcase_add_checked_fixture(run, setup, teardown);
	tcase_add_test(run, step_sets_singlestep_on_its_vcpu_only);
	tcase_add_test(run, step_without_blockirq);
	tcase_add_test(run, legacy_step_and_continue);
	tcase_add_test(run, debug_exits_become_stop_replies);
	tcase_add_test(run, hwbreak_only_for_clients_that_know_it);
	tcase_add_test(run, a_watch_hit_left_over_is_reported_at_resume);
	tcase_add_test(run, ctrl_c_stops_every_vcpu);
	tcase_add_test(run, detach_kill_and_disconnect);
	tcase_add_test(run, vm_exit_tells_a_waiting_client);
	suite_add_tcase(s, run);

	tcase_add_checked_fixture(regs, setup, teardown);
	tcase_add_test(regs, g_has_gdbs_amd64_layout);
	tcase_add_test(regs, x87_tags_from_the_abridged_ones);
	tcase_add_test(regs, p_and_P_reach_the_right_kvm_call);
	tcase_add_test(regs, G_writes_back_only_what_changed);
	tcase_add_test(regs, memory_through_the_current_vcpus_page_tables);
	suite_add_tcase(s, regs);

	tcase_add_checked_fixture(proto, setup, teardown);
	tcase_add_test(proto, threads);
	tcase_add_test(proto, target_description);
	tcase_add_test(proto, bad_input_gets_naks_and_the_stub_goes_on);
	tcase_add_test(proto, input_waits_while_the_vcpus_stop);
	suite_add_tcase(s, proto);
	return testutil_run(s);
}
