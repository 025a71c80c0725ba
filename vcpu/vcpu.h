/*
 * vCPUs: one thread each, in a KVM_RUN loop that dispatches port-I/O and MMIO exits
 * synchronously to the buses. Kicked out of KVM_RUN with immediate_exit plus a signal, so a
 * kick is never lost whether or not the thread is inside KVM_RUN at that moment.
 *
 * struct vcpus is the VM's set of vCPUs and the one owner of their run state: pausing
 * (suspend parks every thread outside KVM_RUN), resuming and stopping go through it only.
 */
#ifndef CROSVM_VCPU_VCPU_H
#define CROSVM_VCPU_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "core/util.h"
#include "core/vm_event.h"

struct bus;
struct guest_mem;
struct kvm;
struct logger;

/* How the boot vCPU enters the guest. */
enum vcpu_boot_mode {
	VCPU_BOOT_LONG64, /* ELF64 / bzImage 64-bit entry: RSI = zero page */
	VCPU_BOOT_PVH32,  /* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct vcpu_boot {
	enum vcpu_boot_mode mode;
	uint64_t entry;
	uint64_t zero_page;  /* VCPU_BOOT_LONG64 */
	uint64_t start_info; /* VCPU_BOOT_PVH32 */
};

/* What vCPU threads use of the VM. */
struct vcpu_env {
	struct kvm *kvm;
	struct bus *pio, *mmio;
	const struct guest_mem *mem;
	const struct logger *log;
	const struct vm_events *ev; /* how a vCPU ends the VM (triple fault, reset, error) */
	struct timespec start_time; /* CLOCK_MONOTONIC at process start, for the startup trace */
};

enum vcpus_state {
	VCPUS_RUNNING = 0,
	VCPUS_PAUSED,
	VCPUS_STOPPING,
};

struct vcpu;

struct vcpus {
	struct vcpu_env env;
	pthread_mutex_t lock;
	pthread_cond_t run_cond;  /* vCPUs wait here for the state to change */
	pthread_cond_t park_cond; /* vcpus_pause waits here for vCPUs to park */
	enum vcpus_state state;
	unsigned nr_parked;  /* vCPU threads currently waiting (paused or held) */
	unsigned nr_started; /* vCPU threads started ... */
	unsigned nr_exited;  /* ... and ended */
	bool debug;	     /* a debugger holds the vCPUs it stops (vcpus_debug_init) */
	int debug_efd;	     /* written when a vCPU stops on a debug exit or all are stopped */
	struct vcpu **v;
	unsigned nr;
	atomic_bool first_run_logged;
};

/* An empty set bound to env (copied). */
int vcpus_init(struct vcpus *s, const struct vcpu_env *env) MUST_CHECK;
/* Creates and configures nr vCPUs (logging what failed). */
int vcpus_create(struct vcpus *s, unsigned nr, const struct vcpu_boot *boot) MUST_CHECK;
/* Starts every vCPU thread (logging what failed). */
int vcpus_start(struct vcpus *s) MUST_CHECK;
/*
 * Parks every vCPU outside KVM_RUN (suspend) and waits until all of them are parked, or
 * releases them (resume). Both are idempotent. Main loop thread.
 */
int vcpus_pause(struct vcpus *s) MUST_CHECK;
void vcpus_resume(struct vcpus *s);
/* Tells every vCPU to stop, kicks it out of KVM_RUN and joins its thread. */
void vcpus_stop(struct vcpus *s);
/*
 * Tells every vCPU to stop and kicks it out of KVM_RUN, without waiting: for the VM's exit
 * request, from any thread, a vCPU's own included (it stops before its next KVM_RUN).
 * vcpus_stop still joins the threads afterwards.
 */
void vcpus_halt(struct vcpus *s);
/* Frees the vCPUs (after vcpus_stop) and the set. */
void vcpus_destroy(struct vcpus *s);
/*
 * A vCPU thread between two KVM_RUNs: waits while paused or held (*paused says whether it
 * did); true when it must stop.
 */
bool vcpus_wait_runnable(struct vcpu *v, bool *paused);
/* Whether the vCPU is to park (paused or held) at its next vcpus_wait_runnable. */
bool vcpus_parking(struct vcpu *v);
/* A vCPU thread ends. */
void vcpus_thread_exit(struct vcpu *v);

/*
 * The debugger's hold (vcpu/gdb), orthogonal to suspend: a held vCPU does not run, whether or
 * not the VM is suspended. All-stop: a debug exit of one vCPU holds every vCPU.
 *
 * vcpus_debug_init holds every vCPU from the start (call it before vcpus_start, before or
 * after vcpus_create: the guest waits for the debugger before its first instruction); efd is
 * written when a vCPU stops on a KVM_EXIT_DEBUG and when every vCPU has stopped. Main loop
 * thread, like the rest below but vcpus_debug_event.
 */
void vcpus_debug_init(struct vcpus *s, int efd);
/* Holds every vCPU and kicks it out of KVM_RUN; vcpus_debug_stopped says when all are. */
void vcpus_debug_stop(struct vcpus *s);
/* Every vCPU is held and outside KVM_RUN (parked, or its thread ended). */
bool vcpus_debug_stopped(struct vcpus *s);
/* Releases the vCPUs with run[i] (by index); holds the others. */
void vcpus_debug_resume(struct vcpus *s, const bool *run);
/* vCPU thread: its KVM_EXIT_DEBUG. Records it, holds every vCPU, writes the efd. */
void vcpus_debug_event(struct vcpu *v, const struct kvm_debug_exit_arch *a);
/* The recorded debug exit of vCPU i not taken yet, taken. */
bool vcpus_debug_take_event(struct vcpus *s, unsigned i, struct kvm_debug_exit_arch *a);

struct vcpu {
	struct vcpus *set;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	/* Set once the thread exists, cleared once it is joined: another vCPU may kick us. */
	atomic_bool started;
	/* Run state owned by vcpus.c, under the set's lock. */
	bool debug_held;
	bool has_debug_event;
	struct kvm_debug_exit_arch debug_event;
};

int vcpu_create(struct vcpus *set, unsigned id, struct vcpu **out) MUST_CHECK;
/* CPUID, MSRs, FPU, LAPIC on every vCPU; registers and boot tables on the BSP (id 0) only:
 * the APs wait for INIT/SIPI from the guest. */
int vcpu_configure(struct vcpu *v, const struct vcpu_boot *boot) MUST_CHECK;
int vcpu_start(struct vcpu *v) MUST_CHECK;
/* Makes the vCPU leave KVM_RUN and look at the VM run state. Any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Handles the exit KVM_RUN left in v->run (exposed for tests); what it asks of the VM. */
enum vm_exit_reason vcpu_handle_exit(struct vcpu *v);

/* Installs the (empty) kick signal handler; call once before any vCPU thread exists. */
int vcpu_signal_setup(void) MUST_CHECK;

/* vcpu/cpuid.c: what the CPUID table of one vCPU is built from. */
struct vcpu_cpuid_in {
	const struct kvm_cpuid2 *supported; /* KVM_GET_SUPPORTED_CPUID */
	unsigned id, nr;		    /* this vCPU of nr (1..) */
	bool tsc_deadline;		    /* KVM_CAP_TSC_DEADLINE_TIMER */
	/* The host's CPUID (vcpu_host_cpuid; a fake in tests), or NULL to take nothing from it. */
	void (*host_cpuid)(uint32_t leaf, uint32_t sub, uint32_t out[4]);
};
/* The CPUID table for one vCPU (malloc'd); -EINVAL if id >= nr. */
int vcpu_cpuid_build(const struct vcpu_cpuid_in *in, struct kvm_cpuid2 **out) MUST_CHECK;
/* The CPUID instruction on the host: out = eax, ebx, ecx, edx. */
void vcpu_host_cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4]);
/* The entry for (function, index) in a table, or NULL. */
const struct kvm_cpuid_entry2 *vcpu_cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					       uint32_t index);
/* vcpu/regs.c: writes the GDT/IDT (and page tables for long mode) into guest memory and
 * fills the initial register state. */
struct guest_mem;
int vcpu_boot_state(const struct guest_mem *m, const struct vcpu_boot *boot, struct kvm_regs *regs,
		    struct kvm_sregs *sregs) MUST_CHECK;
/* vcpu/msr.c: boot MSRs and MTRRs, for the CPUID the vCPU was given. */
int vcpu_msrs_setup(struct vcpu *v, const struct kvm_cpuid2 *cpuid) MUST_CHECK;

/* IA32_MTRR_DEF_TYPE and what every vCPU gets: enabled, fixed ranges on, default WB. */
#define VCPU_MSR_MTRR_DEF_TYPE 0x2ff
#define VCPU_MTRR_DEF_TYPE     0xc06
#define VCPU_MTRR_MAX_MSRS     32
/*
 * The MTRR MSRs (index, value) in the order they are written, IA32_MTRR_DEF_TYPE last: the
 * 11 fixed-range MTRRs write-back, then base/mask pairs making [LAYOUT_MEM_32BIT_GAP, 4 GiB)
 * uncacheable, for a CPU with phys_bits physical address bits (32..52) and var_count
 * variable ranges (MTRRcap.VCNT). -ENOSPC if out (max entries) or the ranges are too few.
 */
int vcpu_mtrr_msrs(unsigned phys_bits, unsigned var_count, struct kvm_msr_entry *out, unsigned max,
		   unsigned *nr) MUST_CHECK;
/* Logs the register state of a vCPU (used for crash reports). */
void vcpu_dump_regs(struct vcpu *v, const char *why);

#endif
