#include "core/kvm.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int get_supported_cpuid(struct kvm *k)
{
	/* Grow the buffer until KVM stops answering E2BIG. */
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		int r;

		if (!c)
			return -ENOMEM;
		c->nent = n;
		r = xioctl(k->dev_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r == 0) {
			k->supported_cpuid = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

static int get_msr_list(struct kvm *k)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	struct kvm_msr_list *l;
	int r = xioctl(k->dev_fd, KVM_GET_MSR_INDEX_LIST, &probe);

	if (r < 0 && r != -E2BIG)
		return r;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	r = xioctl(k->dev_fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		return r;
	}
	k->msr_list = malloc(l->nmsrs * sizeof(uint32_t) + 1);
	if (!k->msr_list) {
		free(l);
		return -ENOMEM;
	}
	memcpy(k->msr_list, l->indices, l->nmsrs * sizeof(uint32_t));
	k->nr_msrs = l->nmsrs;
	free(l);
	return 0;
}

int kvm_open(struct kvm *k, const char *path)
{
	int r;

	*k = (struct kvm){.dev_fd = -1, .vm_fd = -1};
	k->dev_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->dev_fd < 0)
		return -errno;
	r = xioctl(k->dev_fd, KVM_GET_API_VERSION, NULL);
	if (r < 0)
		goto err;
	if (r != KVM_API_VERSION) {
		r = -ENOTSUP;
		goto err;
	}
	r = xioctl(k->dev_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (r <= 0) {
		r = r < 0 ? r : -EINVAL;
		goto err;
	}
	k->run_size = r;
	r = kvm_check_extension(k, KVM_CAP_MAX_VCPUS);
	if (r <= 0)
		r = kvm_check_extension(k, KVM_CAP_NR_VCPUS);
	k->max_vcpus = r > 0 ? (unsigned)r : 4;
	r = get_supported_cpuid(k);
	if (r < 0)
		goto err;
	r = get_msr_list(k);
	if (r < 0)
		goto err;
	do {
		r = ioctl(k->dev_fd, KVM_CREATE_VM, 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		goto err;
	}
	k->vm_fd = r;
	k->tsc_deadline = kvm_check_extension(k, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	k->kvmclock_ctrl = kvm_check_extension(k, KVM_CAP_KVMCLOCK_CTRL) > 0;
	return 0;
err:
	kvm_close(k);
	return r;
}

void kvm_close(struct kvm *k)
{
	close_fd(&k->vm_fd);
	close_fd(&k->dev_fd);
	free(k->supported_cpuid);
	free(k->msr_list);
	k->supported_cpuid = NULL;
	k->msr_list = NULL;
}

int kvm_check_extension(const struct kvm *k, long cap)
{
	int r = ioctl(k->vm_fd >= 0 ? k->vm_fd : k->dev_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? -errno : r;
}

bool kvm_msr_supported(const struct kvm *k, uint32_t index)
{
	for (unsigned i = 0; i < k->nr_msrs; i++)
		if (k->msr_list[i] == index)
			return true;
	return false;
}

int kvm_set_user_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return xioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int kvm_setup_platform(struct kvm *k, uint64_t tss_addr, uint64_t identity_map)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	int r;

	r = xioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map);
	if (r < 0)
		return r;
	r = ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)tss_addr);
	if (r < 0)
		return -errno;
	r = xioctl(k->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (r < 0)
		return r;
	return xioctl(k->vm_fd, KVM_CREATE_PIT2, &pit);
}

int kvm_irqfd(struct kvm *k, int fd, uint32_t gsi, int resample_fd, bool deassign)
{
	struct kvm_irqfd f = {.fd = (uint32_t)fd, .gsi = gsi};

	if (deassign)
		f.flags |= KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		f.flags |= KVM_IRQFD_FLAG_RESAMPLE;
		f.resamplefd = (uint32_t)resample_fd;
	}
	return xioctl(k->vm_fd, KVM_IRQFD, &f);
}

int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, uint32_t len, bool pio, bool datamatch,
		  uint64_t data, bool deassign)
{
	struct kvm_ioeventfd e = {.addr = addr, .len = len, .fd = fd, .datamatch = data};

	if (pio)
		e.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (datamatch)
		e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (deassign)
		e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return xioctl(k->vm_fd, KVM_IOEVENTFD, &e);
}

int kvm_set_gsi_routing(struct kvm *k, const struct kvm_irq_routing_entry *e, unsigned nr)
{
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + nr * sizeof(*e));
	int ret;

	if (!r)
		return -ENOMEM;
	r->nr = nr;
	memcpy(r->entries, e, nr * sizeof(*e));
	ret = xioctl(k->vm_fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	return ret;
}

int kvm_create_vcpu(struct kvm *k, unsigned id, int *fd, struct kvm_run **run)
{
	void *m;
	int r;

	*run = NULL;
	do {
		r = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*fd = r;
	m = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*run = m;
	return 0;
}

void kvm_destroy_vcpu(const struct kvm *k, int *fd, struct kvm_run **run)
{
	if (*run)
		munmap(*run, (size_t)k->run_size);
	*run = NULL;
	close_fd(fd);
}

/* A vCPU configuration ioctl: 0 or -errno. */
static int vcpu_ioctl(int fd, unsigned long req, void *arg)
{
	int r = xioctl(fd, req, arg);

	return r < 0 ? r : 0;
}

int kvm_vcpu_run(int fd)
{
	/* No retry on EINTR: a kick interrupts KVM_RUN on purpose. */
	return ioctl(fd, KVM_RUN, 0) < 0 ? -errno : 0;
}

int kvm_vcpu_get_regs(int fd, struct kvm_regs *r)
{
	return vcpu_ioctl(fd, KVM_GET_REGS, r);
}

int kvm_vcpu_set_regs(int fd, const struct kvm_regs *r)
{
	return vcpu_ioctl(fd, KVM_SET_REGS, (void *)r);
}

int kvm_vcpu_get_sregs(int fd, struct kvm_sregs *s)
{
	return vcpu_ioctl(fd, KVM_GET_SREGS, s);
}

int kvm_vcpu_set_sregs(int fd, const struct kvm_sregs *s)
{
	return vcpu_ioctl(fd, KVM_SET_SREGS, (void *)s);
}

int kvm_vcpu_set_fpu(int fd, const struct kvm_fpu *f)
{
	return vcpu_ioctl(fd, KVM_SET_FPU, (void *)f);
}

int kvm_vcpu_get_lapic(int fd, struct kvm_lapic_state *s)
{
	return vcpu_ioctl(fd, KVM_GET_LAPIC, s);
}

int kvm_vcpu_set_lapic(int fd, const struct kvm_lapic_state *s)
{
	return vcpu_ioctl(fd, KVM_SET_LAPIC, (void *)s);
}

int kvm_vcpu_set_cpuid(int fd, const struct kvm_cpuid2 *c)
{
	return vcpu_ioctl(fd, KVM_SET_CPUID2, (void *)c);
}

/* struct kvm_msrs ends in a flexible array: one entry laid out after it by hand. */
union one_msr {
	struct kvm_msrs m;
	uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)) / 8];
};

int kvm_vcpu_get_msr(int fd, uint32_t index, uint64_t *value)
{
	union one_msr u = {.buf = {0}};
	int r;

	u.m.nmsrs = 1;
	u.m.entries[0].index = index;
	r = xioctl(fd, KVM_GET_MSRS, &u.m);
	if (r < 0)
		return r;
	if (r != 1)
		return -EPERM;
	*value = u.m.entries[0].data;
	return 0;
}

int kvm_vcpu_get_fpu(int fd, struct kvm_fpu *f)
{
	return vcpu_ioctl(fd, KVM_GET_FPU, f);
}

int kvm_vcpu_set_guest_debug(int fd, const struct kvm_guest_debug *d)
{
	return vcpu_ioctl(fd, KVM_SET_GUEST_DEBUG, (void *)d);
}

uint32_t kvm_guest_debug_flags(const struct kvm *k)
{
	int r = kvm_check_extension(k, KVM_CAP_SET_GUEST_DEBUG2);

	return r > 0 ? (uint32_t)r : 0;
}

int kvm_vcpu_set_msr(int fd, uint32_t index, uint64_t value)
{
	union one_msr u = {.buf = {0}};
	int r;

	u.m.nmsrs = 1;
	u.m.entries[0] = (struct kvm_msr_entry){.index = index, .data = value};
	r = xioctl(fd, KVM_SET_MSRS, &u.m);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -EPERM;
}

int kvm_vcpu_kvmclock_ctrl(int fd)
{
	return vcpu_ioctl(fd, KVM_KVMCLOCK_CTRL, NULL);
}
