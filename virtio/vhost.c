#include "virtio/vhost.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>

#include "core/guest_mem.h"
#include "virtio/queue.h"

/* One ioctl, retried when a signal (a vCPU kick is one) interrupts it. */
static int vioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int vhost_get_features(int fd, uint64_t *features)
{
	return vioctl(fd, VHOST_GET_FEATURES, features);
}

int vhost_set_features(int fd, uint64_t features)
{
	return vioctl(fd, VHOST_SET_FEATURES, &features);
}

int vhost_set_owner(int fd)
{
	return vioctl(fd, VHOST_SET_OWNER, NULL);
}

int vhost_reset_owner(int fd)
{
	return vioctl(fd, VHOST_RESET_OWNER, NULL);
}

int vhost_set_mem_table(int fd, const struct guest_mem *mem)
{
	struct vhost_memory *m;
	int ret;

	m = calloc(1, sizeof(*m) + mem->nr * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = mem->nr;
	for (unsigned i = 0; i < mem->nr; i++)
		m->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].hva,
		};
	ret = vioctl(fd, VHOST_SET_MEM_TABLE, m);
	free(m);
	return ret;
}

int vhost_set_queue(int fd, unsigned index, const struct vhost_queue *q)
{
	struct vhost_vring_state num = {.index = index, .num = q->size};
	struct vhost_vring_state base = {.index = index, .num = q->last_avail_idx};
	struct vhost_vring_addr addr = {
		.index = index,
		.desc_user_addr = q->desc_hva,
		.avail_user_addr = q->avail_hva,
		.used_user_addr = q->used_hva,
	};
	struct vhost_vring_file kick = {.index = index, .fd = q->kick_fd};
	struct vhost_vring_file call = {.index = index, .fd = q->call_fd};
	int ret;

	ret = vioctl(fd, VHOST_SET_VRING_NUM, &num);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_ADDR, &addr);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_BASE, &base);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_CALL, &call);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_KICK, &kick);
	return ret;
}

int vhost_get_vring_base(int fd, unsigned index, uint16_t *base)
{
	struct vhost_vring_state s = {.index = index};
	int ret = vioctl(fd, VHOST_GET_VRING_BASE, &s);

	if (ret == 0)
		*base = (uint16_t)s.num;
	return ret;
}

int vhost_vsock_set_guest_cid(int fd, uint64_t cid)
{
	return vioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &cid);
}

int vhost_vsock_set_running(int fd, bool running)
{
	int on = running;

	return vioctl(fd, VHOST_VSOCK_SET_RUNNING, &on);
}

/* ---- for vhost-net (virtio/net_vhost.c): rings straight from a struct virtq ---- */

int vhost_open(const char *path, int *fd)
{
	*fd = open(path, O_RDWR | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

int vhost_set_vring(int fd, unsigned index, const struct virtq *q, int kick, int call)
{
	struct vhost_vring_state num = {.index = index, .num = q->size};
	struct vhost_vring_state base = {.index = index, .num = q->last_avail_idx};
	struct vhost_vring_addr addr = {
		.index = index,
		.desc_user_addr = (uint64_t)(uintptr_t)q->desc,
		.used_user_addr = (uint64_t)(uintptr_t)q->used,
		.avail_user_addr = (uint64_t)(uintptr_t)q->avail,
	};
	struct vhost_vring_file k = {.index = index, .fd = kick};
	struct vhost_vring_file c = {.index = index, .fd = call};
	int ret;

	ret = vioctl(fd, VHOST_SET_VRING_NUM, &num);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_BASE, &base);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_ADDR, &addr);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_KICK, &k);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_CALL, &c);
	return ret;
}

int vhost_stop_vring(int fd, unsigned index, uint16_t *base)
{
	struct vhost_vring_state s = {.index = index};
	struct vhost_vring_file unbind = {.index = index, .fd = VHOST_FILE_UNBIND};
	int ret;

	ret = vioctl(fd, VHOST_GET_VRING_BASE, &s);
	if (ret == 0)
		*base = (uint16_t)s.num;
	/* Let go of the eventfds too: the transport's kick may be watched by someone else next. */
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_KICK, &unbind);
	if (ret == 0)
		ret = vioctl(fd, VHOST_SET_VRING_CALL, &unbind);
	return ret;
}

int vhost_net_set_backend(int fd, unsigned index, int tap_fd)
{
	struct vhost_vring_file f = {.index = index, .fd = tap_fd};

	return vioctl(fd, VHOST_NET_SET_BACKEND, &f);
}
