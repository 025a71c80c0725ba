/*
 * `crosvm run`: create the VM, load the guest, create the devices, start the vCPUs, then
 * serve the main event loop until something ends the VM; tear everything down in order
 * (vCPUs stopped and joined, devices stopped, terminal restored) on every path.
 */
#include "core/vmm/run.h"
#include "control/server.h"
#include "core/vmm/boot.h"
#include "core/layout.h"
#include "core/vmm/platform.h"
#include "core/vmm/term.h"
#include "core/vmm/vm.h"
#include "core/vmm/vm_control.h"
#include "sandbox/sandbox.h"
#include "vcpu/gdb/server.h"
#include "vcpu/vcpu.h"
#include "core/vmm/virtio_devices.h"

#include <cpuid.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

struct run_ctx {
	struct vm *vm;
	int sig_fd;
	struct event *sig_ev;
	struct term term;
	struct gdb_server *gdb; /* --gdb */
};

static void on_exit_request(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	uint64_t n;

	(void)what;
	eventfd_drain((int)fd, &n);
	if (atomic_load(&vm->exit_reason) != VM_EXIT_NONE)
		event_base_loopbreak(vm->eb);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *rc = arg;
	struct signalfd_siginfo si;

	(void)what;
	while (read((int)fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
		case SIGHUP:
			log_info(rc->vm->log, "received %s, stopping the VM",
				 strsignal((int)si.ssi_signo));
			vm_request_exit(rc->vm, VM_EXIT_STOP);
			break;
		default:
			break;
		}
	}
}

/* Blocks the signals the main loop takes through a signalfd (all threads inherit this). */
static int setup_signals(struct run_ctx *rc)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	rc->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (rc->sig_fd < 0)
		return -errno;
	rc->sig_ev = event_new(rc->vm->eb, rc->sig_fd, EV_READ | EV_PERSIST, on_signal, rc);
	if (!rc->sig_ev || event_add(rc->sig_ev, NULL) < 0)
		return -ENOMEM;
	return vcpu_signal_setup();
}

/*
 * Guest RAM is allocated lazily (a sparse memfd mapped MAP_NORESERVE), so, as crosvm and QEMU,
 * a size larger than the host's free memory is fine: only a size the guest's physical address
 * space cannot hold is refused. RAM ends above the 32-bit hole and the 64-bit PCI window follows
 * it (core/layout.c); all of that must be addressable with the CPU's physical address bits.
 */
static int check_memory(const struct vm_config *cfg, const struct logger *lg)
{
	unsigned eax = 0, ebx, ecx, edx, bits = 36;
	uint64_t bytes = cfg->mem_mib << 20, end, limit;

	if (__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) && eax >= 0x80000008 &&
	    __get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx))
		bits = eax & 0xff;
	limit = 1ull << MIN(bits, 52u);
	end = bytes <= LAYOUT_MEM_32BIT_GAP ? LAYOUT_4G
					    : LAYOUT_4G + (bytes - LAYOUT_MEM_32BIT_GAP);
	end = ALIGN_UP(end, GiB(1)) + LAYOUT_PCI_MMIO64_SIZE;
	if (end > limit) {
		log_err(lg,
			"--mem %llu MiB does not fit in the guest's %u-bit physical address space "
			"(at most %llu MiB with the PCI window)",
			(unsigned long long)cfg->mem_mib, bits,
			(unsigned long long)((limit - LAYOUT_PCI_MMIO64_SIZE - LAYOUT_4G +
					      LAYOUT_MEM_32BIT_GAP) >>
					     20));
		return -ENOMEM;
	}
	return 0;
}

/* xAPIC ids (and the MADT) stop at 254 usable CPUs; KVM may allow fewer. */
static int check_cpus(struct vm *vm)
{
	unsigned max = MIN(vm->kvm.max_vcpus, 254u);

	if (vm->cfg->cpus > max) {
		log_err(vm->log, "--cpus %u is more than this host's KVM allows (%u)",
			vm->cfg->cpus, max);
		return -EINVAL;
	}
	return 0;
}

/* The vCPU set, empty until the boot state is known; it owns their run state. */
static int init_vcpus(struct vm *vm)
{
	struct vcpu_env env = {.kvm = &vm->kvm,
			       .pio = &vm->pio,
			       .mmio = &vm->mmio,
			       .mem = &vm->mem,
			       .log = vm->log,
			       .ev = &vm->events,
			       .start_time = vm->start_time};
	int ret;

	vm->vcpus = malloc(sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	ret = vcpus_init(vm->vcpus, &env);
	if (ret < 0) {
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	return ret;
}

static int start_devices(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_devs; i++) {
		struct device *d = vm->devs[i];
		int ret = device_start(d, vm->eb);

		if (ret < 0) {
			log_err(vm->log, "%s: cannot start: %s", d->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void stop_devices(struct vm *vm)
{
	for (unsigned i = vm->nr_devs; i-- > 0;)
		device_stop(vm->devs[i]);
}

/* Moves every sandboxable device into its jailed process, then drops our capabilities. */
static int sandbox_devices(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct sandbox_opts o = {
		.pivot_root = cfg->pivot_root ? cfg->pivot_root : SANDBOX_DEFAULT_PIVOT_ROOT,
		.policy_dir = cfg->seccomp_policy_dir,
		.log_failures = cfg->seccomp_log_failures,
		.violation_device = cfg->test_seccomp_violation,
		.events = &vm->events,
		.stopping = &vm->stopping,
		.log = vm->log,
	};
	int ret = sandbox_prepare(&o);

	for (unsigned i = 0; ret == 0 && i < vm->nr_devs; i++)
		if (vm->devs[i]->policy)
			ret = sandbox_jail_device(vm->devs[i], &o, NULL);
	if (ret < 0)
		return ret;
	ret = sandbox_drop_caps();
	if (ret < 0)
		log_err(vm->log, "cannot drop the capabilities of the main process: %s",
			strerror(-ret));
	return ret;
}

/*
 * --gdb: the debugger's server, before any device process exists and while the process may
 * still bind any port; it holds the vCPUs, so the guest starts only when gdb says so.
 */
static int start_gdb(struct run_ctx *rc)
{
	struct vm *vm = rc->vm;
	struct gdb_server_params p = {.port = vm->cfg->gdb_port,
				      .eb = vm->eb,
				      .vcpus = vm->vcpus,
				      .nr_cpus = vm->cfg->cpus,
				      .kvm_debug_flags = kvm_guest_debug_flags(&vm->kvm),
				      .mem = &vm->mem,
				      .ev = &vm->events,
				      .log = vm->log};

	return gdb_server_create(&p, &rc->gdb);
}

/* The status gdb hears when the VM ends under it: crosvm's extended exit status. */
static int gdb_status(enum vm_exit_reason r)
{
	switch (r) {
	case VM_EXIT_RESET:
		return 32;
	case VM_EXIT_CRASH:
		return 33;
	case VM_EXIT_PANIC:
		return 34;
	default:
		return 0;
	}
}

static bool uses_stdin(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < CONFIG_MAX_SERIAL; i++)
		if (cfg->serial[i].stdin_)
			return true;
	for (unsigned i = 0; i < cfg->nr_vconsoles; i++)
		if (cfg->vconsole[i].s.stdin_)
			return true;
	return false;
}

int run_vm(const struct vm_config *cfg, struct logger *lg, enum vm_exit_reason *reason)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct run_ctx rc = {.vm = vm, .sig_fd = -1};
	struct vcpu_boot boot;
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = check_memory(cfg, lg);
	if (ret < 0)
		goto out_free;
	ret = vm_create(vm, cfg, lg);
	if (ret < 0)
		goto out_free;
	ret = check_cpus(vm);
	if (ret == 0)
		ret = init_vcpus(vm);
	if (ret < 0)
		goto out;
	ret = setup_signals(&rc);
	if (ret < 0) {
		log_err(lg, "cannot set up signal handling: %s", strerror(-ret));
		goto out;
	}
	vm->exit_ev = event_new(vm->eb, vm->exit_efd, EV_READ | EV_PERSIST, on_exit_request, vm);
	if (!vm->exit_ev || event_add(vm->exit_ev, NULL) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	if (cfg->socket_path) {
		/* Before any device process exists, as the socket must be there first. */
		struct control_server_params cp = {.eb = vm->eb,
						   .path = cfg->socket_path,
						   .handle = vm_control_handle,
						   .ctx = vm,
						   .log = lg};

		ret = control_server_create(&cp, &vm->control);
		if (ret < 0)
			goto out;
	}
	if (cfg->gdb_port) {
		ret = start_gdb(&rc);
		if (ret < 0)
			goto out;
	}
	ret = boot_setup(vm, &boot);
	if (ret < 0)
		goto out;
	ret = platform_create(vm);
	if (ret < 0)
		goto out;
	ret = virtio_devices_create(vm);
	if (ret == 0)
		ret = platform_create_pvpanic_pci(vm);
	if (ret < 0)
		goto out;
	if (!cfg->disable_sandbox) {
		ret = sandbox_devices(vm);
		if (ret < 0)
			goto out;
	}
	ret = vcpus_create(vm->vcpus, cfg->cpus, &boot);
	if (ret < 0)
		goto out;
	ret = start_devices(vm);
	if (ret < 0)
		goto out;
	if (uses_stdin(cfg))
		term_raw(&rc.term, STDIN_FILENO);
	if (vcpus_start(vm->vcpus) < 0)
		vm_request_exit(vm, VM_EXIT_CRASH);
	if (atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		event_base_dispatch(vm->eb);
	ret = 0;
out:
	atomic_store(&vm->stopping, true);
	if (vm->vcpus)
		vcpus_stop(vm->vcpus);
	gdb_server_destroy(rc.gdb, gdb_status((enum vm_exit_reason)atomic_load(&vm->exit_reason)));
	/*
	 * A sandboxed device's process is told to stop and reaped here, by its proxy; one that
	 * had died on its own before (its death raced the guest's power-off) makes this a crash,
	 * so the outcome is read only now.
	 */
	stop_devices(vm);
	if (ret == 0) {
		*reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);
		if (*reason == VM_EXIT_NONE)
			*reason = VM_EXIT_STOP;
	}
	if (vm->control)
		control_server_destroy(vm->control);
	vm->control = NULL;
	term_restore(&rc.term);
	if (vm->vcpus)
		vcpus_destroy(vm->vcpus);
	free(vm->vcpus);
	if (rc.sig_ev)
		event_free(rc.sig_ev);
	close_fd(&rc.sig_fd);
	vm_destroy(vm);
out_free:
	free(vm);
	return ret;
}
