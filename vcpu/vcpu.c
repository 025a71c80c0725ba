#include "vcpu/vcpu.h"
#include "core/bus.h"
#include "core/kvm.h"
#include "core/layout.h"
#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VCPU_KICK_SIGNAL (SIGRTMIN + 0)

#define APIC_LVT_LINT0	 0x350
#define APIC_LVT_LINT1	 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI	 0x4

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};

	/* No SA_RESTART: the signal must make KVM_RUN return EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vcpus *set, unsigned id, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	v->set = set;
	v->id = id;
	v->fd = -1;
	ret = kvm_create_vcpu(set->env.kvm, id, &v->fd, &v->run);
	if (ret < 0)
		goto err;
	v->run_size = (size_t)set->env.kvm->run_size;
	*out = v;
	return 0;
err:
	vcpu_destroy(v);
	return ret;
}

static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state s;
	uint32_t lint0, lint1;
	int ret = kvm_vcpu_get_lapic(v->fd, &s);

	if (ret < 0)
		return ret;
	memcpy(&lint0, &s.regs[APIC_LVT_LINT0], 4);
	memcpy(&lint1, &s.regs[APIC_LVT_LINT1], 4);
	/* The BSP takes the 8259's output on LINT0 (virtual wire mode) and NMIs on LINT1. */
	lint0 = (lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	lint1 = (lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&s.regs[APIC_LVT_LINT0], &lint0, 4);
	memcpy(&s.regs[APIC_LVT_LINT1], &lint1, 4);
	return kvm_vcpu_set_lapic(v->fd, &s);
}

static int setup_fpu(struct vcpu *v)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};

	return kvm_vcpu_set_fpu(v->fd, &fpu);
}

int vcpu_configure(struct vcpu *v, const struct vcpu_boot *boot)
{
	const struct vcpu_env *env = &v->set->env;
	struct vcpu_cpuid_in in = {.supported = env->kvm->supported_cpuid,
				   .id = v->id,
				   .nr = v->set->nr,
				   .tsc_deadline = env->kvm->tsc_deadline,
				   .host_cpuid = vcpu_host_cpuid};
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = vcpu_cpuid_build(&in, &cpuid);
	if (ret < 0)
		return ret;
	ret = kvm_vcpu_set_cpuid(v->fd, cpuid);
	if (ret < 0) {
		free(cpuid);
		log_err(env->log, "vcpu%u: KVM_SET_CPUID2 failed: %s", v->id, strerror(-ret));
		return ret;
	}
	/* The MSRs follow what this CPUID says the vCPU has (MTRRs, physical address bits). */
	ret = vcpu_msrs_setup(v, cpuid);
	free(cpuid);
	if (ret < 0)
		return ret;
	ret = setup_fpu(v);
	if (ret < 0)
		return ret;
	if (v->id == 0) {
		ret = setup_lapic(v);
		if (ret < 0)
			return ret;
	}
	if (v->id != 0)
		return 0; /* APs wait in KVM for the guest's INIT/SIPI */
	ret = kvm_vcpu_get_sregs(v->fd, &sregs);
	if (ret == 0)
		ret = vcpu_boot_state(env->mem, boot, &regs, &sregs);
	if (ret == 0)
		ret = kvm_vcpu_set_sregs(v->fd, &sregs);
	if (ret == 0)
		ret = kvm_vcpu_set_regs(v->fd, &regs);
	return ret;
}

void vcpu_dump_regs(struct vcpu *v, const char *why)
{
	struct kvm_regs r = {0};
	struct kvm_sregs s = {0};
	const struct logger *lg = v->set->env.log;
	int ret = kvm_vcpu_get_regs(v->fd, &r);

	if (ret == 0)
		ret = kvm_vcpu_get_sregs(v->fd, &s);
	if (ret < 0) {
		log_err(lg, "vcpu%u: %s (registers unavailable: %s)", v->id, why, strerror(-ret));
		return;
	}
	log_err(lg, "vcpu%u: %s", v->id, why);
	log_err(lg, "  rip=%016llx rsp=%016llx rflags=%016llx", r.rip, r.rsp, r.rflags);
	log_err(lg, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx", r.rax, r.rbx, r.rcx,
		r.rdx);
	log_err(lg, "  rsi=%016llx rdi=%016llx rbp=%016llx r8=%016llx", r.rsi, r.rdi, r.rbp, r.r8);
	log_err(lg, "  r9=%016llx r10=%016llx r11=%016llx r12=%016llx", r.r9, r.r10, r.r11, r.r12);
	log_err(lg, "  r13=%016llx r14=%016llx r15=%016llx", r.r13, r.r14, r.r15);
	log_err(lg, "  cr0=%llx cr2=%llx cr3=%llx cr4=%llx efer=%llx", s.cr0, s.cr2, s.cr3, s.cr4,
		s.efer);
	log_err(lg, "  cs=%04x (base %llx, l=%u db=%u) ss=%04x gdt=%llx/%x idt=%llx/%x",
		s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.gdt.base, s.gdt.limit,
		s.idt.base, s.idt.limit);
}

/* Dispatches the port-I/O exit: a string instruction may carry `count` items. */
static void handle_pio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	if (run->io.data_offset + (uint64_t)run->io.size * run->io.count > v->run_size)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size) {
		int r = bus_access(v->set->env.pio, run->io.port, p, run->io.size, out);

		if (r == 0)
			continue;
		if (!out)
			memset(p, 0xff, run->io.size);
		if (r == -ENOENT)
			log_debug(v->set->env.log, "vcpu%u: unclaimed port %s 0x%x (size %u)",
				  v->id, out ? "write" : "read", run->io.port, run->io.size);
		else
			log_debug(v->set->env.log, "vcpu%u: port 0x%x access failed: %s", v->id,
				  run->io.port, strerror(-r));
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	int r;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	r = bus_access(v->set->env.mmio, run->mmio.phys_addr, run->mmio.data, len,
		       run->mmio.is_write);
	if (r == 0)
		return;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
	log_debug(v->set->env.log, "vcpu%u: %s MMIO %s 0x%llx (len %u)%s", v->id,
		  r == -ENOENT ? "unclaimed" : "failed", run->mmio.is_write ? "write" : "read",
		  (unsigned long long)run->mmio.phys_addr, len, r == -ENOENT ? "" : "");
}

static enum vm_exit_reason handle_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char why[256];

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		int n = snprintf(why, sizeof(why), "KVM could not emulate an instruction");

		if (run->emulation_failure.ndata >= 3 &&
		    (run->emulation_failure.flags &
		     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
			unsigned sz = MIN(run->emulation_failure.insn_size, 15u);

			n += snprintf(why + n, sizeof(why) - (size_t)n, " (bytes:");
			for (unsigned i = 0; i < sz && n < (int)sizeof(why) - 4; i++)
				n += snprintf(why + n, sizeof(why) - (size_t)n, " %02x",
					      run->emulation_failure.insn_bytes[i]);
			snprintf(why + n, sizeof(why) - (size_t)n, ")");
		}
	} else {
		snprintf(why, sizeof(why), "KVM internal error, suberror %u",
			 run->internal.suberror);
	}
	vcpu_dump_regs(v, why);
	return VM_EXIT_CRASH;
}

enum vm_exit_reason vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_pio(v);
		return VM_EXIT_NONE;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return VM_EXIT_NONE;
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return VM_EXIT_NONE;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault. crosvm counts it as a stop; say clearly what happened. */
		vcpu_dump_regs(v, "guest triple fault (KVM_EXIT_SHUTDOWN): the VM stops");
		return VM_EXIT_STOP;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_RESET:
			log_info(v->set->env.log, "vcpu%u: system reset event", v->id);
			return VM_EXIT_RESET;
		case KVM_SYSTEM_EVENT_SHUTDOWN:
		case KVM_SYSTEM_EVENT_CRASH:
			log_info(v->set->env.log, "vcpu%u: system %s event", v->id,
				 run->system_event.type == KVM_SYSTEM_EVENT_CRASH ? "crash"
										  : "shutdown");
			return VM_EXIT_STOP;
		default:
			log_debug(v->set->env.log, "vcpu%u: system event %u ignored", v->id,
				  run->system_event.type);
			return VM_EXIT_NONE;
		}
	case KVM_EXIT_DEBUG:
		/* A single step or a debug register of the debugger's: it stops the VM. */
		vcpus_debug_event(v, &run->debug.arch);
		return VM_EXIT_NONE;
	case KVM_EXIT_INTERNAL_ERROR:
		return handle_internal_error(v);
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_dump_regs(v, "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY)");
		log_err(v->set->env.log, "  hardware entry failure reason 0x%llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return VM_EXIT_CRASH;
	default: {
		char why[64];

		snprintf(why, sizeof(why), "unexpected KVM exit reason %u", run->exit_reason);
		vcpu_dump_regs(v, why);
		return VM_EXIT_CRASH;
	}
	}
}

/*
 * Tells the guest, through its kvmclock page, that this vCPU was paused (as crosvm does), so
 * that its soft-lockup watchdog does not take the pause for a hung CPU. -EINVAL: the guest
 * has no kvmclock, which is fine.
 */
static void tell_guest_paused(struct vcpu *v)
{
	const struct vcpu_env *env = &v->set->env;
	int ret;

	if (!env->kvm->kvmclock_ctrl)
		return;
	ret = kvm_vcpu_kvmclock_ctrl(v->fd);
	if (ret < 0 && ret != -EINVAL)
		log_debug(env->log, "vcpu%u: KVM_KVMCLOCK_CTRL failed: %s", v->id, strerror(-ret));
}

static void log_first_run(struct vcpu *v)
{
	struct timespec now, real;
	const struct vcpu_env *env = &v->set->env;
	bool expected = false;

	if (!atomic_compare_exchange_strong(&v->set->first_run_logged, &expected, true))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &real);
	/* Machine-readable, for scripts/bench-startup: wall clock of the first guest entry. */
	log_debug(env->log, "first KVM_RUN: %.3f ms after VM creation began (realtime %lld.%09ld)",
		  (double)(now.tv_sec - env->start_time.tv_sec) * 1e3 +
			  (double)(now.tv_nsec - env->start_time.tv_nsec) / 1e6,
		  (long long)real.tv_sec, real.tv_nsec);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	const struct vcpu_env *env = &v->set->env;
	bool io_pending = false;
	char name[16];

	snprintf(name, sizeof(name), "crosvm_vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		enum vm_exit_reason reason;
		bool paused;
		int ret;

		/*
		 * Also where an access just handled that ended the VM (ACPI S5, a reset register,
		 * pvpanic: vcpus_halt under the request) stops this vCPU: the guest runs not one
		 * more instruction. KVM finishes an I/O instruction (its result in a register, rip
		 * past it) in the next KVM_RUN. Before parking, that KVM_RUN is made with
		 * immediate_exit, which completes it and returns at once, so a parked vCPU's
		 * registers are final.
		 */
		paused = false;
		if (io_pending && vcpus_parking(v))
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		else if (vcpus_wait_runnable(v, &paused))
			break;
		if (paused)
			tell_guest_paused(v);
		if (v->id == 0)
			log_first_run(v);
		io_pending = false;
		ret = kvm_vcpu_run(v->fd);
		if (ret < 0) {
			if (ret == -EINTR || ret == -EAGAIN) {
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			log_err(env->log, "vcpu%u: KVM_RUN failed: %s", v->id, strerror(-ret));
			vm_events_exit(env->ev, VM_EXIT_CRASH);
			break;
		}
		io_pending =
			v->run->exit_reason == KVM_EXIT_IO || v->run->exit_reason == KVM_EXIT_MMIO;
		reason = vcpu_handle_exit(v);
		if (reason != VM_EXIT_NONE) {
			vm_events_exit(env->ev, reason);
			break;
		}
	}
	vcpus_thread_exit(v);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (r)
		return -r;
	atomic_store(&v->started, true);
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!atomic_load(&v->started))
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (!atomic_load(&v->started))
		return;
	pthread_join(v->thread, NULL);
	atomic_store(&v->started, false);
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	kvm_destroy_vcpu(v->set->env.kvm, &v->fd, &v->run);
	free(v);
}
