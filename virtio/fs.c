#include "virtio/fs.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>

#include "core/iov.h"
#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#define NR_QUEUES (1 + VIRTIO_FS_REQUEST_QUEUES)
/* Descriptors the process needs besides its inodes and handles (queues, sockets, proc). */
#define FD_RESERVE 64
#define NOFILE	   (VIRTIO_FS_MAX_INODES + VIRTIO_FS_MAX_HANDLES + FD_RESERVE)
/*
 * What a file server must be able to do, within its user namespace only: act as any mapped
 * user (setfsuid/setfsgid), and as the owner of any mapped file (chown, chmod, utimes, read
 * and write whatever the guest's kernel has allowed).
 */
#define FS_CAPS                                                                                    \
	(BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_FOWNER) |     \
	 BIT(CAP_FSETID) | BIT(CAP_SETUID) | BIT(CAP_SETGID))

struct vfs {
	pthread_mutex_t lock;
	const struct logger *lg;
	char name[48]; /* "virtio-fs <tag>", in logs */
	struct fs_server_config scfg;
	char *root_path;	 /* canonical: the sandbox's root */
	char *uid_map, *gid_map; /* the user namespace's, as /proc/PID/uid_map takes them */
	struct virtio_fs_config config;
	/* Until the server exists: its root and its /proc/self/fd (-1 until known). */
	int root_fd, proc_fd;
	bool jailed;
	struct fs_server *srv;	    /* made at the first activation, in the device's process */
	struct virtq *q[NR_QUEUES]; /* NULL while not activated */
	struct virtio_irq *irq;
	struct virtq_chain chain;
};

static enum virtq_verdict serve_chain(void *ctx, struct virtq_chain *c, int status,
				      uint32_t *written)
{
	struct vfs *f = ctx;
	struct iov_cursor in, out;

	/* -EBADMSG: the queue has logged why; the request comes back empty. */
	if (status < 0)
		return VIRTQ_PUSH;
	iov_cursor_reader(&in, c);
	iov_cursor_writer(&out, c);
	*written = (uint32_t)fs_server_handle(f->srv, &in, &out);
	return VIRTQ_PUSH;
}

static const struct virtq_server fs_serve = {.serve = serve_chain};

/*
 * How many inodes and handles fit in the process's descriptor limit. Unsandboxed, the VMM's
 * soft limit is raised towards its hard one first; sandboxed, the jail set it (NOFILE).
 */
static int limits(struct vfs *f, uint32_t *inodes, uint32_t *handles)
{
	struct rlimit rl;
	uint64_t budget;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (!f->jailed && rl.rlim_cur < NOFILE && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)NOFILE);
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	if (rl.rlim_cur < 2 * FD_RESERVE) {
		log_err(f->lg, "%s: %llu file descriptors are too few to serve files", f->name,
			(unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	budget = MIN((uint64_t)rl.rlim_cur - FD_RESERVE, (uint64_t)NOFILE);
	*handles = (uint32_t)MIN(budget / 8, (uint64_t)VIRTIO_FS_MAX_HANDLES);
	*inodes = (uint32_t)MIN(budget - *handles, (uint64_t)VIRTIO_FS_MAX_INODES);
	return 0;
}

/* Lock held. The server, in the process that serves: it owns the root and proc from then on. */
static int make_server(struct vfs *f)
{
	struct fs_server_params p = {.cfg = &f->scfg,
				     .lg = f->lg,
				     .name = f->name,
				     .root_fd = f->root_fd,
				     .private_proc = f->jailed};
	int ret;

	if (f->proc_fd < 0) {
		/* Unsandboxed: the VMM's own /proc. */
		f->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (f->proc_fd < 0) {
			ret = -errno;
			log_err(f->lg, "%s: cannot open /proc/self/fd: %s", f->name,
				strerror(-ret));
			return ret;
		}
	}
	p.proc_self_fd = f->proc_fd;
	ret = limits(f, &p.max_inodes, &p.max_handles);
	if (ret == 0)
		ret = fs_server_create(&p, &f->srv);
	if (ret < 0) {
		log_err(f->lg, "%s: cannot start the file server: %s", f->name, strerror(-ret));
		return ret;
	}
	f->root_fd = f->proc_fd = -1;
	return 0;
}

static int fs_activate(void *dev, const struct virtio_activate *a)
{
	struct vfs *f = dev;
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	if (!f->srv)
		ret = make_server(f);
	if (ret == 0) {
		for (unsigned i = 0; i < NR_QUEUES; i++)
			f->q[i] = i < a->nr_queues ? a->queues[i] : NULL;
		f->irq = a->irq;
	}
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static void fs_notify(void *dev, unsigned queue)
{
	struct vfs *f = dev;
	bool irq = false;

	pthread_mutex_lock(&f->lock);
	if (queue < NR_QUEUES && f->q[queue] &&
	    virtq_serve(f->q[queue], &f->chain, &fs_serve, f, &irq) < 0) {
		f->q[queue] = NULL;
		virtio_irq_needs_reset(f->irq);
	}
	/* Under the lock, so that a reset cannot slip in between and see it late. */
	if (irq)
		virtio_irq_queue(f->irq, queue);
	pthread_mutex_unlock(&f->lock);
}

static void fs_reset(void *dev)
{
	struct vfs *f = dev;

	pthread_mutex_lock(&f->lock);
	memset(f->q, 0, sizeof(f->q));
	f->irq = NULL;
	/* The driver starts over: its inodes and open files are gone with it. */
	if (f->srv)
		fs_server_reset(f->srv);
	pthread_mutex_unlock(&f->lock);
}

static int fs_config_read(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct vfs *f = dev;

	if (off > sizeof(f->config) || len > sizeof(f->config) - off)
		return -EINVAL;
	memcpy(data, (const uint8_t *)&f->config + off, len);
	return 0;
}

static int fs_fds(void *dev, struct fd_list *out)
{
	struct vfs *f = dev;
	int ret = fd_list_add(out, f->root_fd);

	return ret < 0 ? ret : fd_list_add(out, f->proc_fd);
}

/*
 * In the jailed process, before it starts: its root must be the directory the VMM checked
 * (a path can change between the check and the pivot; the inode cannot), and it takes the
 * private proc.
 */
static int fs_entered(void *ctx, int proc_fd)
{
	struct vfs *f = ctx;
	struct stat want, got;
	int root;

	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || fstat(root, &got) < 0 || fstat(f->root_fd, &want) < 0) {
		int e = errno;

		if (root >= 0)
			close(root);
		close(proc_fd);
		return -e;
	}
	if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) {
		log_err(f->lg, "%s: %s is no longer the directory it was when the VM started",
			f->name, f->root_path);
		close(root);
		close(proc_fd);
		return -ESTALE;
	}
	close_fd(&f->root_fd);
	close_fd(&f->proc_fd);
	f->root_fd = root;
	f->proc_fd = proc_fd;
	f->jailed = true;
	return 0;
}

static int fs_jail(void *dev, struct dev_jail *j)
{
	struct vfs *f = dev;

	*j = (struct dev_jail){.root = f->root_path,
			       .uid_map = f->uid_map,
			       .gid_map = f->gid_map,
			       .caps = FS_CAPS,
			       .nofile = NOFILE,
			       .want_proc = true,
			       .entered = fs_entered,
			       .ctx = f};
	return 0;
}

static void fs_destroy(void *dev)
{
	struct vfs *f = dev;

	fs_server_destroy(f->srv);
	close_fd(&f->root_fd);
	close_fd(&f->proc_fd);
	free(f->root_path);
	free(f->uid_map);
	free(f->gid_map);
	virtq_chain_free(&f->chain);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct virtio_dev_ops fs_ops = {
	.name = "virtio-fs",
	.policy = "fs_device",
	.device_type = VIRTIO_ID_FS,
	.nr_queues = NR_QUEUES,
	.queue_max_size = VIRTIO_FS_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_fs_config),
	.config_read = fs_config_read,
	.activate = fs_activate,
	.notify = fs_notify,
	.reset = fs_reset,
	.fds = fs_fds,
	.jail = fs_jail,
	.destroy = fs_destroy,
};

/* "inner outer count" lines for /proc/PID/{uid,gid}_map: the option's, or "0 <ours> 1". */
static int map_text(char **out, const char *given, unsigned ours)
{
	char dflt[32];

	snprintf(dflt, sizeof(dflt), "0 %u 1\n", ours);
	*out = strdup(given ? given : dflt);
	return *out ? 0 : -ENOMEM;
}

static int open_root(struct vfs *f, const char *path)
{
	struct stat st;

	f->root_path = realpath(path, NULL);
	if (!f->root_path)
		return -errno;
	/* The directory itself, never a symlink swapped in after realpath looked. */
	f->root_fd = open(f->root_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->root_fd < 0)
		return -errno;
	if (fstat(f->root_fd, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int virtio_fs_create(const struct fs_config *cfg, const struct logger *lg,
		     const struct virtio_dev_ops **ops, void **dev)
{
	size_t tag_len = cfg->tag ? strlen(cfg->tag) : 0;
	struct vfs *f;
	int ret;

	if (!tag_len || tag_len > VIRTIO_FS_TAG_MAX || !cfg->path)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->root_fd = f->proc_fd = -1;
	f->lg = lg;
	f->scfg = cfg->server;
	snprintf(f->name, sizeof(f->name), "virtio-fs %s", cfg->tag);
	memcpy(f->config.tag, cfg->tag, tag_len);
	f->config.num_request_queues = VIRTIO_FS_REQUEST_QUEUES;
	ret = -pthread_mutex_init(&f->lock, NULL);
	if (ret < 0)
		goto err_free;
	ret = virtq_chain_alloc(&f->chain, VIRTIO_FS_QUEUE_SIZE);
	if (ret < 0)
		goto err_lock;
	ret = map_text(&f->uid_map, cfg->uid_map, (unsigned)geteuid());
	if (ret == 0)
		ret = map_text(&f->gid_map, cfg->gid_map, (unsigned)getegid());
	if (ret < 0)
		goto err_chain;
	ret = open_root(f, cfg->path);
	if (ret < 0) {
		log_err(lg, "--shared-dir %s: %s", cfg->path, strerror(-ret));
		goto err_chain;
	}
	*ops = &fs_ops;
	*dev = f;
	return 0;
err_chain:
	close_fd(&f->root_fd);
	free(f->root_path);
	free(f->uid_map);
	free(f->gid_map);
	virtq_chain_free(&f->chain);
err_lock:
	pthread_mutex_destroy(&f->lock);
err_free:
	free(f);
	return ret;
}
