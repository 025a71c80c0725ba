#include "vcpu/gdb/target.h"
#include "core/guest_mem.h"
#include "core/kvm.h"
#include "vcpu/paging.h"
#include "vcpu/vcpu.h"

static struct vcpu *cpu_of(void *ctx, unsigned cpu)
{
	struct gdb_target *t = ctx;

	return cpu < t->vcpus->nr ? t->vcpus->v[cpu] : NULL;
}

static int get_regs(void *ctx, unsigned cpu, struct gdb_cpu_state *st)
{
	struct vcpu *v = cpu_of(ctx, cpu);
	int ret;

	if (!v)
		return -ESRCH;
	ret = kvm_vcpu_get_regs(v->fd, &st->regs);
	if (ret == 0)
		ret = kvm_vcpu_get_sregs(v->fd, &st->sregs);
	if (ret == 0)
		ret = kvm_vcpu_get_fpu(v->fd, &st->fpu);
	if (ret < 0)
		return ret;
	/* A KVM without the MSR still has every other register to show. */
	st->have_kernel_gs_base =
		kvm_vcpu_get_msr(v->fd, GDB_MSR_KERNEL_GS_BASE, &st->kernel_gs_base) == 0;
	return 0;
}

static int set_regs(void *ctx, unsigned cpu, const struct gdb_cpu_state *st, unsigned groups)
{
	struct vcpu *v = cpu_of(ctx, cpu);
	int ret = 0;

	if (!v)
		return -ESRCH;
	if (groups & GDB_REGS_GPR)
		ret = kvm_vcpu_set_regs(v->fd, &st->regs);
	if (ret == 0 && (groups & GDB_REGS_SREGS))
		ret = kvm_vcpu_set_sregs(v->fd, &st->sregs);
	if (ret == 0 && (groups & GDB_REGS_FPU))
		ret = kvm_vcpu_set_fpu(v->fd, &st->fpu);
	if (ret == 0 && (groups & GDB_REGS_MSR))
		ret = st->have_kernel_gs_base
			      ? kvm_vcpu_set_msr(v->fd, GDB_MSR_KERNEL_GS_BASE, st->kernel_gs_base)
			      : -ENODATA;
	return ret;
}

static int paging_of(struct vcpu *v, struct paging_regs *r)
{
	struct kvm_sregs s;
	int ret = kvm_vcpu_get_sregs(v->fd, &s);

	if (ret == 0)
		paging_regs_from_sregs(&s, r);
	return ret;
}

static int read_mem(void *ctx, unsigned cpu, uint64_t addr, void *buf, size_t len, size_t *done)
{
	struct gdb_target *t = ctx;
	struct vcpu *v = cpu_of(ctx, cpu);
	struct paging_regs r;
	int ret;

	*done = 0;
	if (!v)
		return -ESRCH;
	ret = paging_of(v, &r);
	if (ret < 0)
		return ret;
	while (*done < len) {
		uint64_t gpa, left, n;

		if (paging_translate(t->mem, &r, addr + *done, &gpa, &left) < 0)
			break;
		n = MIN(left, len - *done);
		if (guest_mem_read(t->mem, gpa, (uint8_t *)buf + *done, n) < 0)
			break;
		*done += n;
	}
	return *done ? 0 : -EFAULT;
}

static int write_mem(void *ctx, unsigned cpu, uint64_t addr, const void *buf, size_t len)
{
	struct gdb_target *t = ctx;
	struct vcpu *v = cpu_of(ctx, cpu);
	struct paging_regs r;
	int ret;

	if (!v)
		return -ESRCH;
	ret = paging_of(v, &r);
	if (ret < 0)
		return ret;
	/* Every page first: a write that cannot be done whole is not begun. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t done = 0; done < len;) {
			uint64_t gpa, left, n;

			if (paging_translate(t->mem, &r, addr + done, &gpa, &left) < 0)
				return -EFAULT;
			n = MIN(left, len - done);
			if (pass == 0 && !guest_mem_valid(t->mem, gpa, n))
				return -EFAULT;
			if (pass == 1 &&
			    guest_mem_write(t->mem, gpa, (const uint8_t *)buf + done, n) < 0)
				return -EFAULT;
			done += n;
		}
	}
	return 0;
}

static int set_debug(void *ctx, unsigned cpu, const struct kvm_guest_debug *dbg)
{
	struct vcpu *v = cpu_of(ctx, cpu);

	return v ? kvm_vcpu_set_guest_debug(v->fd, dbg) : -ESRCH;
}

static void stop(void *ctx)
{
	vcpus_debug_stop(((struct gdb_target *)ctx)->vcpus);
}

static bool stopped(void *ctx)
{
	return vcpus_debug_stopped(((struct gdb_target *)ctx)->vcpus);
}

static void resume(void *ctx, const bool *run)
{
	vcpus_debug_resume(((struct gdb_target *)ctx)->vcpus, run);
}

static bool take_event(void *ctx, unsigned cpu, struct kvm_debug_exit_arch *a)
{
	return vcpus_debug_take_event(((struct gdb_target *)ctx)->vcpus, cpu, a);
}

static void kill_vm(void *ctx)
{
	vm_events_exit(((struct gdb_target *)ctx)->ev, VM_EXIT_STOP);
}

const struct gdb_target_ops gdb_target_ops = {
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
