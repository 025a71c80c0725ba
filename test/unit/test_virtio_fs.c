/*
 * virtio-fs behind the virtio-pci transport, driven as Linux's driver does: its identity and
 * configuration (tag, request queues), FUSE requests on the request queue and FORGET on the
 * high-priority one, malformed chains, a reset ending the session; then the same device in its
 * jailed process (sandbox/), as the VMM runs it: its root is the shared directory, its ids come
 * from the user namespace maps (a file the guest's root makes belongs to the mapped host user,
 * a host file of an unmapped user is the overflow id), and every operation the driver uses
 * gets through its seccomp policy (a refused syscall would kill it and hang the request).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/vm_event.h"
#include "sandbox/sandbox.h"
#include "test/unit/fuse_msg.h"
#include "test/unit/testutil.h"
#include "test/unit/virtio_env.h"
#include "virtio/fs.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#define RAM_SIZE 0x2000000ULL
#define RING_GPA 0x10000ULL
#define DATA_GPA 0x100000ULL
#define DATA_LEN 0x400000ULL
#define QSIZE	 256
#define HIPRIO	 0
#define REQ	 1
#define MAPPED	 4321 /* the host uid and gid the sandboxed device's root maps to */
#define ROOT	 FUSE_ROOT_ID
#define FEATURES (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX))

static const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
static const struct virtio_env_params env_params = {.ram = ram,
						    .nr_ram = ARRAY_SIZE(ram),
						    .queue_size = QSIZE,
						    .ring_gpa = RING_GPA,
						    .data_gpa = DATA_GPA,
						    .data_len = DATA_LEN};

struct t {
	struct virtio_env e;
	char dir[64], share[80], empty[80];
	bool sandboxed;
	struct event_base *jail_eb;
	struct vm_events events;
	atomic_bool stopping;
	int died;
	uint64_t unique;
	uint8_t body[8192];
	size_t body_len;
};

static void died(void *ctx, enum vm_exit_reason reason)
{
	((struct t *)ctx)->died = (int)reason;
}

static void up(struct t *t, bool sandboxed, const char *uid_map)
{
	struct fs_config cfg = {.tag = "share",
				.server = {.cache = FS_CACHE_AUTO, .timeout = 1},
				.uid_map = (char *)uid_map,
				.gid_map = (char *)uid_map};
	const struct virtio_dev_ops *ops;
	void *dev;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/crosvm-vfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->share, sizeof(t->share), "%s/share", t->dir);
	snprintf(t->empty, sizeof(t->empty), "%s/empty", t->dir);
	ck_assert_int_eq(mkdir(t->share, 0755), 0);
	ck_assert_int_eq(mkdir(t->empty, 0755), 0);
	cfg.path = t->share;
	ck_assert_int_eq(virtio_env_create(&t->e, &env_params), 0);
	t->e.lg.level = LOG_LVL_ERROR;
	ck_assert_int_eq(virtio_fs_create(&cfg, &t->e.lg, &ops, &dev), 0);
	ck_assert_int_eq(virtio_env_attach(&t->e, ops, dev, "virtio-fs0"), 0);
	t->sandboxed = sandboxed;
	if (sandboxed) {
		struct sandbox_opts so = {.pivot_root = t->empty,
					  .events = &t->events,
					  .stopping = &t->stopping,
					  .log = &t->e.lg};

		t->events = (struct vm_events){.request_exit = died, .ctx = t};
		t->jail_eb = event_base_new();
		ck_assert_ptr_nonnull(t->jail_eb);
		ck_assert_int_eq(sandbox_jail_device(t->e.dev, &so, NULL), 0);
		ck_assert_int_eq(device_start(t->e.dev, t->jail_eb), 0);
		device_msix_state(t->e.dev, true);
	} else {
		ck_assert_int_eq(virtio_env_start(&t->e, true), 0);
	}
	virtio_env_init(&t->e, FEATURES, 2);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void down(struct t *t)
{
	atomic_store(&t->stopping, true);
	virtio_env_destroy(&t->e);
	if (t->jail_eb)
		event_base_free(t->jail_eb);
	ck_assert_int_eq(t->died, 0);
	nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Waits for the device to give chain head of queue q back; its used length. */
static uint32_t wait_used(struct t *t, unsigned q, uint16_t head)
{
	/* A hang guard, not a timing check: 20 s for what takes microseconds. */
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = {.fd = t->e.irq.vector_fds[VIRTIO_ENV_Q_VECTOR(q)],
				   .events = POLLIN};
		int64_t len;

		if (!t->sandboxed)
			virtio_env_run_loop(&t->e);
		len = virtio_env_used(&t->e, q, head);
		if (len >= 0)
			return (uint32_t)len;
		if (t->sandboxed) {
			event_base_loop(t->jail_eb, EVLOOP_NONBLOCK);
			ck_assert_msg(!t->died, "the device process died");
			poll(&p, 1, 10);
			virtio_env_count(p.fd);
		}
	}
	ck_abort_msg("the device never answered on queue %u", q);
	return 0;
}

/*
 * Puts m on queue q as one readable and one writable buffer (reply_cap bytes, 0: none) and
 * waits for it; returns the used length. The reply is then t->body.
 */
static uint32_t send_on(struct t *t, unsigned q, struct fuse_msg *m, size_t reply_cap)
{
	struct virtq_driver *d = &t->e.drv[q];
	uint64_t req_gpa, rep_gpa;
	uint8_t req[4096];
	size_t len;
	uint16_t head;
	uint32_t used;

	m->unique = ++t->unique;
	len = fuse_msg_build(m, req, sizeof(req));
	ck_assert_uint_gt(len, 0);
	virtq_driver_free_all(d);
	ck_assert_int_eq(virtq_driver_alloc(d, (uint32_t)len, &req_gpa), 0);
	ck_assert_int_eq(virtq_driver_alloc(d, (uint32_t)sizeof(t->body), &rep_gpa), 0);
	memcpy(virtio_env_ptr(&t->e, req_gpa, len), req, len);
	{
		struct virtq_buf b[2] = {
			{.gpa = req_gpa, .len = (uint32_t)len},
			{.gpa = rep_gpa, .len = (uint32_t)reply_cap, .writable = true}};

		head = virtio_env_add(&t->e, q, b, reply_cap ? 2 : 1);
	}
	virtq_driver_kick(d);
	used = wait_used(t, q, head);
	ck_assert_uint_le(used, reply_cap);
	memcpy(t->body, virtio_env_ptr(&t->e, rep_gpa, sizeof(t->body)), sizeof(t->body));
	t->body_len = used;
	return used;
}

/* A request on the request queue; returns the reply's error, the body after the header. */
static int call(struct t *t, struct fuse_msg *m, size_t body_cap)
{
	struct fuse_out_header oh;
	uint32_t used = send_on(t, REQ, m, sizeof(oh) + body_cap);

	ck_assert_uint_ge(used, sizeof(oh));
	memcpy(&oh, t->body, sizeof(oh));
	ck_assert_uint_eq(oh.len, used);
	ck_assert_uint_eq(oh.unique, m->unique);
	memmove(t->body, t->body + sizeof(oh), used - sizeof(oh));
	t->body_len = used - sizeof(oh);
	return oh.error;
}

static void fuse_init(struct t *t)
{
	struct fuse_init_in in = {.major = 7,
				  .minor = 38,
				  .max_readahead = 65536,
				  .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES};
	struct fuse_msg m = {.opcode = FUSE_INIT, .arg = &in, .arg_len = sizeof(in)};

	ck_assert_int_eq(call(t, &m, sizeof(struct fuse_init_out)), 0);
	ck_assert_uint_eq(t->body_len, sizeof(struct fuse_init_out));
}

static int entry_op(struct t *t, struct fuse_msg *m, struct fuse_entry_out *out)
{
	int err = call(t, m, sizeof(*out) + sizeof(struct fuse_open_out));

	if (!err && out)
		memcpy(out, t->body, sizeof(*out));
	return err;
}

START_TEST(identity_and_configuration)
{
	struct fuse_msg m = {0};
	struct t t;
	char tag[VIRTIO_FS_TAG_MAX + 1] = {0};

	up(&t, false, NULL);
	ck_assert_uint_eq(t.e.ops->device_type, VIRTIO_ID_FS);
	ck_assert_uint_eq(t.e.ops->nr_queues, 2);
	ck_assert_uint_eq(t.e.desc.device_id, 0x1040 + VIRTIO_ID_FS);
	ck_assert_uint_eq(t.e.desc.class_code, 0x01);
	ck_assert_uint_eq(t.e.desc.subclass, 0x80);
	for (unsigned i = 0; i < VIRTIO_FS_TAG_MAX; i++)
		tag[i] = (char)virtio_env_rd(&t.e, VIRTIO_PCI_DEVICE_OFF + i, 1);
	ck_assert_str_eq(tag, "share");
	ck_assert_uint_eq(virtio_env_rd(&t.e,
					VIRTIO_PCI_DEVICE_OFF + offsetof(struct virtio_fs_config,
									 num_request_queues),
					4),
			  1);
	/* Past the configuration: zeros. */
	ck_assert_uint_eq(virtio_env_rd(&t.e, VIRTIO_PCI_DEVICE_OFF + 40, 4), 0);
	/* Nothing but INIT before INIT; then a lookup of the root's child works. */
	m.opcode = FUSE_LOOKUP;
	m.nodeid = ROOT;
	m.name = "x";
	ck_assert_int_eq(call(&t, &m, sizeof(struct fuse_entry_out)), -EIO);
	fuse_init(&t);
	ck_assert_int_eq(call(&t, &m, sizeof(struct fuse_entry_out)), -ENOENT);
	down(&t);
}
END_TEST

START_TEST(bad_configurations)
{
	struct logger lg;
	const struct virtio_dev_ops *ops;
	void *dev;
	struct fs_config cfg = {.path = "/", .tag = "0123456789012345678901234567890123456"};

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	ck_assert_int_eq(virtio_fs_create(&cfg, &lg, &ops, &dev), -EINVAL);
	cfg.tag = "";
	ck_assert_int_eq(virtio_fs_create(&cfg, &lg, &ops, &dev), -EINVAL);
	cfg.tag = "ok";
	cfg.path = "/nonexistent-dir-for-crosvm";
	ck_assert_int_eq(virtio_fs_create(&cfg, &lg, &ops, &dev), -ENOENT);
	cfg.path = "/proc/self/exe";
	ck_assert_int_lt(virtio_fs_create(&cfg, &lg, &ops, &dev), 0);
}
END_TEST

START_TEST(queues_chains_and_reset)
{
	struct fuse_entry_out ent;
	struct fuse_mkdir_in mk = {.mode = 0755};
	struct fuse_msg mkdir_m = {.opcode = FUSE_MKDIR,
				   .nodeid = ROOT,
				   .arg = &mk,
				   .arg_len = sizeof(mk),
				   .name = "d"};
	struct fuse_forget_in fg = {.nlookup = 1};
	struct fuse_msg forget = {.opcode = FUSE_FORGET, .arg = &fg, .arg_len = sizeof(fg)};
	struct fuse_getattr_in ga = {0};
	struct fuse_msg getattr = {.opcode = FUSE_GETATTR, .arg = &ga, .arg_len = sizeof(ga)};
	struct t t;

	up(&t, false, NULL);
	fuse_init(&t);
	ck_assert_int_eq(entry_op(&t, &mkdir_m, &ent), 0);
	/* FORGET comes on the high-priority queue and gets nothing back. */
	forget.nodeid = ent.nodeid;
	ck_assert_uint_eq(send_on(&t, HIPRIO, &forget, 0), 0);
	getattr.nodeid = ent.nodeid;
	ck_assert_int_eq(call(&t, &getattr, sizeof(struct fuse_attr_out)), -ENOENT);
	/* A request without room for a reply's header is given back empty. */
	mkdir_m.name = "e";
	ck_assert_uint_eq(send_on(&t, REQ, &mkdir_m, 8), 0);
	/* A reset ends the session: the driver starts again with INIT. */
	ck_assert_int_eq(
		entry_op(&t, &(struct fuse_msg){.opcode = FUSE_LOOKUP, .nodeid = ROOT, .name = "d"},
			 &ent),
		0);
	virtio_env_wr(&t.e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	virtio_env_init(&t.e, FEATURES, 2);
	getattr.nodeid = ent.nodeid;
	ck_assert_int_eq(call(&t, &getattr, sizeof(struct fuse_attr_out)), -EIO);
	fuse_init(&t);
	ck_assert_int_eq(call(&t, &getattr, sizeof(struct fuse_attr_out)), -ENOENT);
	down(&t);
}
END_TEST

/* Every operation Linux's driver uses, once, in the jailed process. */
START_TEST(sandboxed_with_mapped_ids)
{
	char map[32], path[256];
	struct fuse_entry_out d, f, ent;
	struct fuse_open_out o;
	struct stat st;
	uint64_t fh, dh;
	struct t t;
	int fd;

	snprintf(map, sizeof(map), "0 %u 1\n", MAPPED);
	up(&t, true, map);
	/* The share belongs to the mapped user; a file in it to the host's root (unmapped). */
	ck_assert_int_eq(chown(t.share, MAPPED, MAPPED), 0);
	snprintf(path, sizeof(path), "%s/rootfile", t.share);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "root's", 6), 6);
	close(fd);
	fuse_init(&t);

	/* The mapped user is the guest's root; the host's root is nobody. */
	{
		struct fuse_getattr_in ga = {0};
		struct fuse_msg m = {
			.opcode = FUSE_GETATTR, .nodeid = ROOT, .arg = &ga, .arg_len = sizeof(ga)};
		struct fuse_attr_out out;

		ck_assert_int_eq(call(&t, &m, sizeof(out)), 0);
		memcpy(&out, t.body, sizeof(out));
		ck_assert_uint_eq(out.attr.uid, 0);
		ck_assert_uint_eq(out.attr.gid, 0);
	}
	ck_assert_int_eq(entry_op(&t,
				  &(struct fuse_msg){.opcode = FUSE_LOOKUP,
						     .nodeid = ROOT,
						     .name = "rootfile"},
				  &ent),
			 0);
	ck_assert_uint_eq(ent.attr.uid, 65534);
	{
		struct fuse_mkdir_in mk = {.mode = 0750};
		struct fuse_msg m = {.opcode = FUSE_MKDIR,
				     .nodeid = ROOT,
				     .arg = &mk,
				     .arg_len = sizeof(mk),
				     .name = "dir"};

		ck_assert_int_eq(entry_op(&t, &m, &d), 0);
	}
	{
		struct fuse_create_in cr = {.flags = O_RDWR, .mode = S_IFREG | 0640};
		struct fuse_msg m = {.opcode = FUSE_CREATE,
				     .nodeid = d.nodeid,
				     .arg = &cr,
				     .arg_len = sizeof(cr),
				     .name = "file"};

		ck_assert_int_eq(entry_op(&t, &m, &f), 0);
		memcpy(&o, t.body + sizeof(f), sizeof(o));
		fh = o.fh;
	}
	snprintf(path, sizeof(path), "%s/dir/file", t.share);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, MAPPED);
	ck_assert_uint_eq(st.st_gid, MAPPED);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	{
		struct fuse_write_in w = {.fh = fh, .size = 5};
		struct fuse_msg m = {.opcode = FUSE_WRITE,
				     .nodeid = f.nodeid,
				     .arg = &w,
				     .arg_len = sizeof(w),
				     .data = "jail!",
				     .data_len = 5};
		struct fuse_read_in r = {.fh = fh, .size = 100};
		struct fuse_msg rm = {
			.opcode = FUSE_READ, .nodeid = f.nodeid, .arg = &r, .arg_len = sizeof(r)};

		ck_assert_int_eq(call(&t, &m, sizeof(struct fuse_write_out)), 0);
		ck_assert_int_eq(call(&t, &rm, 100), 0);
		ck_assert_uint_eq(t.body_len, 5);
		ck_assert(memcmp(t.body, "jail!", 5) == 0);
	}
	/* Everything else the driver sends, each through the device's seccomp policy. */
	{
		struct fuse_setattr_in sa = {.valid = FATTR_MODE | FATTR_SIZE | FATTR_ATIME |
						      FATTR_MTIME_NOW | FATTR_MTIME | FATTR_UID,
					     .mode = 0600,
					     .size = 3,
					     .atime = 10,
					     .uid = 0};
		struct fuse_fsync_in fs = {.fh = fh};
		struct fuse_flush_in fl = {.fh = fh};
		struct fuse_fallocate_in fa = {.fh = fh, .length = 8192};
		struct fuse_lseek_in ls = {.fh = fh, .whence = SEEK_HOLE};
		struct fuse_copy_file_range_in cp = {
			.fh_in = fh, .fh_out = fh, .off_out = 8192, .len = 3};
		struct fuse_setxattr_in sx = {.size = 2};
		struct fuse_getxattr_in gx = {.size = 100};
		struct fuse_access_in ac = {.mask = R_OK};
		struct fuse_link_in li = {.oldnodeid = f.nodeid};
		struct fuse_rename2_in rn = {.newdir = ROOT};
		struct fuse_mknod_in mn = {.mode = S_IFIFO | 0600};
		struct fuse_syncfs_in sf = {0};
		struct fuse_read_in rd = {.size = 4096};
		struct fuse_release_in rl = {0};
		struct {
			struct fuse_msg m;
			size_t reply;
		} ops[] = {
			{{.opcode = FUSE_SETATTR,
			  .nodeid = f.nodeid,
			  .arg = &sa,
			  .arg_len = sizeof(sa)},
			 sizeof(struct fuse_attr_out)},
			{{.opcode = FUSE_FSYNC,
			  .nodeid = f.nodeid,
			  .arg = &fs,
			  .arg_len = sizeof(fs)},
			 0},
			{{.opcode = FUSE_FLUSH,
			  .nodeid = f.nodeid,
			  .arg = &fl,
			  .arg_len = sizeof(fl)},
			 0},
			{{.opcode = FUSE_FALLOCATE,
			  .nodeid = f.nodeid,
			  .arg = &fa,
			  .arg_len = sizeof(fa)},
			 0},
			{{.opcode = FUSE_LSEEK,
			  .nodeid = f.nodeid,
			  .arg = &ls,
			  .arg_len = sizeof(ls)},
			 8},
			{{.opcode = FUSE_COPY_FILE_RANGE,
			  .nodeid = f.nodeid,
			  .arg = &cp,
			  .arg_len = sizeof(cp)},
			 8},
			{{.opcode = FUSE_SETXATTR,
			  .nodeid = f.nodeid,
			  .arg = &sx,
			  .arg_len = 8,
			  .name = "user.k",
			  .data = "v!",
			  .data_len = 2},
			 0},
			{{.opcode = FUSE_GETXATTR,
			  .nodeid = f.nodeid,
			  .arg = &gx,
			  .arg_len = sizeof(gx),
			  .name = "user.k"},
			 100},
			{{.opcode = FUSE_LISTXATTR,
			  .nodeid = f.nodeid,
			  .arg = &gx,
			  .arg_len = sizeof(gx)},
			 100},
			{{.opcode = FUSE_REMOVEXATTR, .nodeid = f.nodeid, .name = "user.k"}, 0},
			{{.opcode = FUSE_ACCESS,
			  .nodeid = f.nodeid,
			  .arg = &ac,
			  .arg_len = sizeof(ac)},
			 0},
			{{.opcode = FUSE_STATFS, .nodeid = ROOT}, sizeof(struct fuse_statfs_out)},
			{{.opcode = FUSE_LINK,
			  .nodeid = ROOT,
			  .arg = &li,
			  .arg_len = sizeof(li),
			  .name = "hard"},
			 sizeof(ent)},
			{{.opcode = FUSE_SYMLINK,
			  .nodeid = ROOT,
			  .name = "sym",
			  .name2 = "/etc/passwd"},
			 sizeof(ent)},
			{{.opcode = FUSE_MKNOD,
			  .nodeid = ROOT,
			  .arg = &mn,
			  .arg_len = sizeof(mn),
			  .name = "fifo"},
			 sizeof(ent)},
			{{.opcode = FUSE_RENAME2,
			  .nodeid = ROOT,
			  .arg = &rn,
			  .arg_len = sizeof(rn),
			  .name = "hard",
			  .name2 = "renamed"},
			 0},
			{{.opcode = FUSE_SYNCFS, .nodeid = ROOT, .arg = &sf, .arg_len = sizeof(sf)},
			 0},
			{{.opcode = FUSE_RELEASE,
			  .nodeid = f.nodeid,
			  .arg = &rl,
			  .arg_len = sizeof(rl)},
			 0},
		};

		rl.fh = fh;
		for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
			ck_assert_msg(call(&t, &ops[i].m, ops[i].reply) == 0, "opcode %u",
				      ops[i].m.opcode);
			if (ops[i].m.opcode == FUSE_SETATTR) {
				struct fuse_attr_out a;

				memcpy(&a, t.body, sizeof(a));
				ck_assert_uint_eq(a.attr.atime, 10);
				ck_assert_uint_eq(a.attr.uid, 0);
			}
		}
		/* Listing a directory with its entries, then removing names. */
		ck_assert_int_eq(call(&t,
				      &(struct fuse_msg){.opcode = FUSE_OPENDIR,
							 .nodeid = ROOT,
							 .arg = &(struct fuse_open_in){0},
							 .arg_len = sizeof(struct fuse_open_in)},
				      sizeof(o)),
				 0);
		memcpy(&o, t.body, sizeof(o));
		dh = o.fh;
		rd.fh = dh;
		ck_assert_int_eq(call(&t,
				      &(struct fuse_msg){.opcode = FUSE_READDIRPLUS,
							 .nodeid = ROOT,
							 .arg = &rd,
							 .arg_len = sizeof(rd)},
				      4096),
				 0);
		ck_assert_ptr_nonnull(memmem(t.body, t.body_len, "renamed", 7));
		ck_assert_int_eq(
			call(&t, &(struct fuse_msg){.opcode = FUSE_READLINK, .nodeid = ent.nodeid},
			     4096),
			-EINVAL);
		rl.fh = dh;
		ck_assert_int_eq(call(&t,
				      &(struct fuse_msg){.opcode = FUSE_RELEASEDIR,
							 .nodeid = ROOT,
							 .arg = &rl,
							 .arg_len = sizeof(rl)},
				      0),
				 0);
		ck_assert_int_eq(call(&t,
				      &(struct fuse_msg){.opcode = FUSE_UNLINK,
							 .nodeid = d.nodeid,
							 .name = "file"},
				      0),
				 0);
		ck_assert_int_eq(call(&t,
				      &(struct fuse_msg){
					      .opcode = FUSE_RMDIR, .nodeid = ROOT, .name = "dir"},
				      0),
				 0);
		ck_assert_int_eq(call(&t, &(struct fuse_msg){.opcode = FUSE_DESTROY}, 0), 0);
	}
	snprintf(path, sizeof(path), "%s/sym", t.share);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, MAPPED);
	snprintf(path, sizeof(path), "%s/renamed", t.share);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_size, 8192 + 3);
	/* The guest asked for root: the mapped user on the host. */
	ck_assert_uint_eq(st.st_uid, MAPPED);
	snprintf(path, sizeof(path), "%s/dir", t.share);
	ck_assert_int_ne(stat(path, &st), 0);
	down(&t);
}
END_TEST

/* Guest users the maps do not have cannot be taken: nothing is made as them. */
START_TEST(sandboxed_unmapped_caller)
{
	struct fuse_mkdir_in mk = {.mode = 0755};
	struct fuse_msg m = {.opcode = FUSE_MKDIR,
			     .nodeid = ROOT,
			     .uid = 1000,
			     .gid = 1000,
			     .arg = &mk,
			     .arg_len = sizeof(mk),
			     .name = "as1000"};
	char map[32], path[256];
	struct t t;

	snprintf(map, sizeof(map), "0 %u 1\n", MAPPED);
	up(&t, true, map);
	ck_assert_int_eq(chown(t.share, MAPPED, MAPPED), 0);
	fuse_init(&t);
	ck_assert_int_eq(call(&t, &m, sizeof(struct fuse_entry_out)), -EPERM);
	snprintf(path, sizeof(path), "%s/as1000", t.share);
	ck_assert_int_ne(access(path, F_OK), 0);
	m.uid = m.gid = 0;
	ck_assert_int_eq(call(&t, &m, sizeof(struct fuse_entry_out)), 0);
	down(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_fs");
	TCase *tc = tcase_create("device");

	tcase_add_test(tc, identity_and_configuration);
	tcase_add_test(tc, bad_configurations);
	tcase_add_test(tc, queues_chains_and_reset);
	suite_add_tcase(s, tc);
	tc = tcase_create("sandboxed");
	tcase_add_test(tc, sandboxed_with_mapped_ids);
	tcase_add_test(tc, sandboxed_unmapped_caller);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
