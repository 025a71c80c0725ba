/*
 * libFuzzer target for the gdb stub: the input is what a client sends, fed in pieces to the
 * packet parser and protocol engine (vcpu/gdb/packet.c, stub.c) over a fake target of four
 * vCPUs and 64 KiB of memory. Some input bytes stand for the target's news instead (a vCPU
 * stops on a debug exit, the vCPUs are slow to stop, the client reconnects, the VM ends).
 * Checked: every byte the stub sends is '+', '-' or a packet with a good checksum and at most
 * GDB_PACKET_MAX payload bytes; registers, memory and debug state are only touched while the
 * VM is stopped; KVM_SET_GUEST_DEBUG only ever gets a consistent control and DR7.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "vcpu/gdb/packet.h"
#include "vcpu/gdb/stub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NR_CPUS	 4
#define MEM_SIZE 0x10000

struct fake {
	bool running[NR_CPUS];
	bool slow; /* the vCPUs do not stop until polled again */
	bool stop_requested;
	bool event[NR_CPUS];
	struct kvm_debug_exit_arch ev[NR_CPUS];
	struct gdb_cpu_state st[NR_CPUS];
	uint8_t mem[MEM_SIZE];
	bool killed;
	/* the output parser: where we are in the stub's byte stream */
	int state;
	size_t plen;
	uint8_t sum;
	char csum[2];
};

static bool any_running(const struct fake *f)
{
	for (int i = 0; i < NR_CPUS; i++)
		if (f->running[i])
			return true;
	return false;
}

static void must_be_stopped(const struct fake *f)
{
	if (any_running(f))
		abort();
}

static int get_regs(void *ctx, unsigned cpu, struct gdb_cpu_state *st)
{
	struct fake *f = ctx;

	must_be_stopped(f);
	if (cpu >= NR_CPUS)
		abort();
	*st = f->st[cpu];
	return 0;
}

static int set_regs(void *ctx, unsigned cpu, const struct gdb_cpu_state *st, unsigned groups)
{
	struct fake *f = ctx;

	must_be_stopped(f);
	if (cpu >= NR_CPUS || !groups || groups > 15)
		abort();
	f->st[cpu] = *st;
	return 0;
}

static int read_mem(void *ctx, unsigned cpu, uint64_t addr, void *buf, size_t len, size_t *done)
{
	struct fake *f = ctx;

	must_be_stopped(f);
	if (cpu >= NR_CPUS || len > GDB_PACKET_MAX)
		abort();
	*done = 0;
	if (addr >= MEM_SIZE)
		return -EFAULT;
	*done = MIN(len, MEM_SIZE - addr);
	memcpy(buf, f->mem + addr, *done);
	return 0;
}

static int write_mem(void *ctx, unsigned cpu, uint64_t addr, const void *buf, size_t len)
{
	struct fake *f = ctx;

	must_be_stopped(f);
	if (cpu >= NR_CPUS || len > GDB_PACKET_MAX)
		abort();
	if (addr >= MEM_SIZE || len > MEM_SIZE - addr)
		return -EFAULT;
	memcpy(f->mem + addr, buf, len);
	return 0;
}

static int set_debug(void *ctx, unsigned cpu, const struct kvm_guest_debug *d)
{
	const uint32_t known = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP |
			       KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_BLOCKIRQ;
	uint64_t dr7 = d->arch.debugreg[7];
	struct fake *f = ctx;

	must_be_stopped(f);
	if (cpu >= NR_CPUS || (d->control & ~known))
		abort();
	if (d->control && !(d->control & KVM_GUESTDBG_ENABLE))
		abort();
	if (!(d->control & KVM_GUESTDBG_USE_HW_BP)) {
		for (int i = 0; i < 8; i++)
			if (d->arch.debugreg[i])
				abort();
		return 0;
	}
	if ((dr7 & 0x600) != 0x600 || (dr7 & 0x55) || (dr7 >> 32))
		abort();
	for (int i = 0; i < 4; i++) {
		bool on = dr7 & (2ull << (2 * i));
		unsigned rw = (dr7 >> (16 + 4 * i)) & 3, len = (dr7 >> (18 + 4 * i)) & 3;
		unsigned bytes = len == 0 ? 1 : len == 1 ? 2 : len == 3 ? 4 : 8;

		if (!on && (rw || len || d->arch.debugreg[i]))
			abort();
		if (on && (rw == 2 || (rw == 0 && len) || (d->arch.debugreg[i] & (bytes - 1))))
			abort();
	}
	return 0;
}

static void stop(void *ctx)
{
	((struct fake *)ctx)->stop_requested = true;
}

static bool stopped(void *ctx)
{
	struct fake *f = ctx;

	if (f->slow)
		return false;
	memset(f->running, 0, sizeof(f->running));
	return true;
}

static void resume(void *ctx, const bool *run)
{
	struct fake *f = ctx;

	must_be_stopped(f);
	f->stop_requested = false;
	memcpy(f->running, run, sizeof(f->running));
}

static bool take_event(void *ctx, unsigned cpu, struct kvm_debug_exit_arch *a)
{
	struct fake *f = ctx;

	if (cpu >= NR_CPUS)
		abort();
	if (!f->event[cpu])
		return false;
	f->event[cpu] = false;
	*a = f->ev[cpu];
	return true;
}

static void kill_vm(void *ctx)
{
	((struct fake *)ctx)->killed = true;
}

static const struct gdb_target_ops ops = {
	.get_regs = get_regs,
	.set_regs = set_regs,
	.read_mem = read_mem,
	.write_mem = write_mem,
	.set_debug = set_debug,
	.stop = stop,
	.stopped = stopped,
	.resume = resume,
	.take_event = take_event,
	.kill = kill_vm,
};

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The stub's output, byte by byte: only acks and well-formed packets. */
static void check_output(void *ctx, const void *data, size_t len)
{
	struct fake *f = ctx;
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		switch (f->state) {
		case 0:
			if (c == '$') {
				f->state = 1;
				f->plen = 0;
				f->sum = 0;
			} else if (c != '+' && c != '-') {
				abort();
			}
			break;
		case 1:
			if (c == '#') {
				f->state = 2;
			} else {
				if (c == '$' || ++f->plen > GDB_PACKET_MAX)
					abort();
				f->sum = (uint8_t)(f->sum + c);
			}
			break;
		case 2:
			f->csum[0] = (char)c;
			f->state = 3;
			break;
		default:
			if (hexval((uint8_t)f->csum[0]) < 0 || hexval(c) < 0 ||
			    (hexval((uint8_t)f->csum[0]) << 4 | hexval(c)) != f->sum)
				abort();
			f->state = 0;
			break;
		}
	}
}

static const struct logger quiet = {.level = LOG_LVL_OFF};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct gdb_stub_params p = {.nr_cpus = NR_CPUS,
				    .kvm_debug_flags = KVM_GUESTDBG_BLOCKIRQ,
				    .ops = &ops,
				    .send = check_output,
				    .log = &quiet};
	struct gdb_stub *s;
	size_t i = 0;

	if (!f)
		return 0;
	p.target = f;
	p.send_ctx = f;
	for (int c = 0; c < NR_CPUS; c++)
		f->st[c].sregs.cs.selector = 0x10;
	if (gdb_stub_create(&p, &s) < 0) {
		free(f);
		return 0;
	}
	gdb_stub_connect(s);
	while (i < size && !f->killed) {
		uint8_t op = data[i++];

		if (op < 0xe0) {
			/* A piece of the client's stream, as much as the stub takes now. */
			size_t n = MIN((size_t)(op & 0x3f) + 1, size - i);
			bool close = false;
			size_t taken = gdb_stub_input(s, data + i, n, &close);

			if (taken > n || (taken < n && !gdb_stub_busy(s) && !close))
				abort();
			i += n;
			if (close) {
				gdb_stub_disconnect(s);
				gdb_stub_connect(s);
			}
		} else if (op < 0xf0) {
			/* vCPU op & 3 stops on a debug exit (DR6 and the vector from the input). */
			unsigned cpu = op & 3;

			if (!f->running[cpu] || i + 1 >= size)
				continue;
			f->ev[cpu] = (struct kvm_debug_exit_arch){
				.exception = (data[i] & 1) ? 1 : 3,
				.dr6 = data[i + 1] | (uint64_t)(data[i] & 0x40) << 8};
			f->event[cpu] = true;
			i += 2;
			f->stop_requested = true;
			gdb_stub_poll(s);
		} else if (op == 0xf0) {
			f->slow = !f->slow;
			gdb_stub_poll(s);
		} else if (op == 0xf1) {
			gdb_stub_poll(s);
		} else if (op == 0xf2) {
			gdb_stub_disconnect(s);
			gdb_stub_connect(s);
		} else if (op == 0xf3) {
			gdb_stub_vm_exit(s, data[i - 1]);
		}
	}
	gdb_stub_destroy(s);
	free(f);
	return 0;
}
