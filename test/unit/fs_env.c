#include "test/unit/fs_env.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/iov.h"

#define IN_CAP (2 * FS_MAX_IO)

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

void fs_env_up_cfg(struct fs_env *e, const struct fs_server_config *cfg, uint32_t max_inodes,
		   uint32_t max_handles)
{
	struct fs_server_params p;
	int root, proc;

	memset(e, 0, sizeof(*e));
	log_init(&e->lg);
	e->lg.level = LOG_LVL_ERROR;
	e->cfg = *cfg;
	snprintf(e->dir, sizeof(e->dir), "/tmp/crosvm-fs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(e->share, sizeof(e->share), "%s/share", e->dir);
	snprintf(e->outside, sizeof(e->outside), "%s/outside", e->dir);
	ck_assert_int_eq(mkdir(e->share, 0755), 0);
	ck_assert_int_eq(mkdir(e->outside, 0755), 0);
	write_file(fs_env_path(e, e->outside, "secret"), FS_ENV_SECRET);
	root = open(e->share, O_PATH | O_DIRECTORY | O_CLOEXEC);
	proc = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root, 0);
	ck_assert_int_ge(proc, 0);
	p = (struct fs_server_params){.cfg = &e->cfg,
				      .lg = &e->lg,
				      .name = "test-fs",
				      .root_fd = root,
				      .proc_self_fd = proc,
				      .max_inodes = max_inodes,
				      .max_handles = max_handles};
	ck_assert_int_eq(fs_server_create(&p, &e->s), 0);
	e->in = malloc(IN_CAP);
	e->out = malloc(sizeof(struct fuse_out_header) + FS_ENV_BODY);
	ck_assert(e->in && e->out);
}

void fs_env_up(struct fs_env *e, uint32_t max_inodes, uint32_t max_handles)
{
	struct fs_server_config cfg = {.cache = FS_CACHE_AUTO, .timeout = 1};

	fs_env_up_cfg(e, &cfg, max_inodes, max_handles);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void fs_env_down(struct fs_env *e)
{
	fs_server_destroy(e->s);
	e->s = NULL;
	nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e->in);
	free(e->out);
}

const char *fs_env_path(struct fs_env *e, const char *base, const char *name)
{
	static char path[2][512];
	static unsigned which;

	which ^= 1;
	snprintf(path[which], sizeof(path[which]), "%.200s/%.200s", base, name);
	return path[which];
}

size_t fs_env_raw(struct fs_env *e, const void *req, size_t len, size_t reply_cap)
{
	struct iovec in = {.iov_base = (void *)req, .iov_len = len};
	struct iovec out = {.iov_base = e->out, .iov_len = reply_cap};
	struct iov_cursor ic, oc;

	ck_assert_uint_le(reply_cap, sizeof(struct fuse_out_header) + FS_ENV_BODY);
	iov_cursor_init(&ic, &in, 1);
	iov_cursor_init(&oc, &out, reply_cap ? 1 : 0);
	return fs_server_handle(e->s, &ic, &oc);
}

int fs_env_call(struct fs_env *e, struct fuse_msg *m, size_t reply_cap)
{
	struct fuse_out_header oh;
	size_t len, written;

	m->unique = ++e->unique;
	len = fuse_msg_build(m, e->in, IN_CAP);
	ck_assert_uint_gt(len, 0);
	written = fs_env_raw(e, e->in, len, sizeof(oh) + reply_cap);
	ck_assert_uint_ge(written, sizeof(oh));
	memcpy(&oh, e->out, sizeof(oh));
	ck_assert_uint_eq(oh.len, written);
	ck_assert_uint_eq(oh.unique, m->unique);
	ck_assert_int_le(oh.error, 0);
	ck_assert_int_gt(oh.error, -4096);
	/* An error carries no body. */
	ck_assert(oh.error == 0 || oh.len == sizeof(oh));
	e->body = e->out + sizeof(oh);
	e->body_len = written - sizeof(oh);
	return oh.error;
}

void fs_env_init(struct fs_env *e)
{
	struct fuse_init_in in = {.major = 7,
				  .minor = 38,
				  .max_readahead = 128 << 10,
				  .flags = 0x73fffffb | FUSE_INIT_EXT};
	struct fuse_msg m = {.opcode = FUSE_INIT, .arg = &in, .arg_len = sizeof(in)};
	struct fuse_init_out out;

	ck_assert_int_eq(fs_env_call(e, &m, sizeof(out)), 0);
	ck_assert_uint_eq(e->body_len, sizeof(out));
	memcpy(&out, e->body, sizeof(out));
	ck_assert_uint_eq(out.major, 7);
	ck_assert_uint_eq(out.minor, 38);
	ck_assert_uint_eq(out.max_write, FS_MAX_IO);
	ck_assert_uint_eq(out.max_pages, FS_MAX_PAGES);
}

static int entry_call(struct fs_env *e, struct fuse_msg *m, struct fuse_entry_out *out)
{
	int err = fs_env_call(e, m, sizeof(*out));

	if (err == 0) {
		ck_assert_uint_eq(e->body_len, sizeof(*out));
		if (out)
			memcpy(out, e->body, sizeof(*out));
	}
	return err;
}

int fs_lookup_(struct fs_env *e, uint64_t dir, const char *name, struct fuse_entry_out *out)
{
	struct fuse_msg m = {.opcode = FUSE_LOOKUP, .nodeid = dir, .name = name};

	return entry_call(e, &m, out);
}

int fs_mkdir_(struct fs_env *e, uint64_t dir, const char *name, uint32_t mode,
	      struct fuse_entry_out *out)
{
	struct fuse_mkdir_in in = {.mode = mode};
	struct fuse_msg m = {.opcode = FUSE_MKDIR,
			     .nodeid = dir,
			     .arg = &in,
			     .arg_len = sizeof(in),
			     .name = name};

	return entry_call(e, &m, out);
}

int fs_create_(struct fs_env *e, uint64_t dir, const char *name, uint32_t flags, uint32_t mode,
	       struct fuse_entry_out *out, uint64_t *fh)
{
	struct fuse_create_in in = {.flags = flags, .mode = S_IFREG | mode};
	struct fuse_msg m = {.opcode = FUSE_CREATE,
			     .nodeid = dir,
			     .arg = &in,
			     .arg_len = sizeof(in),
			     .name = name};
	struct fuse_open_out o;
	int err = fs_env_call(e, &m, sizeof(*out) + sizeof(o));

	if (err == 0) {
		ck_assert_uint_eq(e->body_len, sizeof(*out) + sizeof(o));
		if (out)
			memcpy(out, e->body, sizeof(*out));
		memcpy(&o, e->body + sizeof(*out), sizeof(o));
		if (fh)
			*fh = o.fh;
	}
	return err;
}

int fs_open_(struct fs_env *e, uint64_t node, uint32_t flags, bool dir, uint64_t *fh)
{
	struct fuse_open_in in = {.flags = flags};
	struct fuse_msg m = {.opcode = dir ? FUSE_OPENDIR : FUSE_OPEN,
			     .nodeid = node,
			     .arg = &in,
			     .arg_len = sizeof(in)};
	struct fuse_open_out o;
	int err = fs_env_call(e, &m, sizeof(o));

	if (err == 0) {
		ck_assert_uint_eq(e->body_len, sizeof(o));
		memcpy(&o, e->body, sizeof(o));
		*fh = o.fh;
	}
	return err;
}

int fs_release_(struct fs_env *e, uint64_t node, uint64_t fh, bool dir)
{
	struct fuse_release_in in = {.fh = fh};
	struct fuse_msg m = {.opcode = dir ? FUSE_RELEASEDIR : FUSE_RELEASE,
			     .nodeid = node,
			     .arg = &in,
			     .arg_len = sizeof(in)};

	return fs_env_call(e, &m, 0);
}

int fs_write_(struct fs_env *e, uint64_t node, uint64_t fh, uint64_t off, const void *p, size_t n)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = (uint32_t)n};
	struct fuse_msg m = {.opcode = FUSE_WRITE,
			     .nodeid = node,
			     .arg = &in,
			     .arg_len = sizeof(in),
			     .data = p,
			     .data_len = n};
	struct fuse_write_out o;
	int err = fs_env_call(e, &m, sizeof(o));

	if (err == 0) {
		memcpy(&o, e->body, sizeof(o));
		ck_assert_uint_eq(o.size, n);
	}
	return err;
}

int fs_read_(struct fs_env *e, uint64_t node, uint64_t fh, uint64_t off, void *buf, size_t cap,
	     size_t *n)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = (uint32_t)cap};
	struct fuse_msg m = {
		.opcode = FUSE_READ, .nodeid = node, .arg = &in, .arg_len = sizeof(in)};
	int err = fs_env_call(e, &m, cap);

	if (err == 0) {
		ck_assert_uint_le(e->body_len, cap);
		memcpy(buf, e->body, e->body_len);
		*n = e->body_len;
	}
	return err;
}

int fs_list_(struct fs_env *e, uint64_t dir, bool plus, char *names, size_t cap)
{
	uint64_t fh, off = 0;
	size_t used = 0;
	int err = fs_open_(e, dir, 0, true, &fh);

	if (err)
		return err;
	names[0] = '\0';
	for (;;) {
		struct fuse_read_in in = {.fh = fh, .offset = off, .size = 4096};
		struct fuse_msg m = {.opcode = plus ? FUSE_READDIRPLUS : FUSE_READDIR,
				     .nodeid = dir,
				     .arg = &in,
				     .arg_len = sizeof(in)};
		size_t pos = 0;

		err = fs_env_call(e, &m, 4096);
		if (err || !e->body_len)
			break;
		while (pos < e->body_len) {
			struct fuse_dirent d;
			size_t at = pos + (plus ? sizeof(struct fuse_entry_out) : 0);

			ck_assert_uint_le(at + sizeof(d), e->body_len);
			memcpy(&d, e->body + at, sizeof(d));
			ck_assert_uint_le(at + sizeof(d) + d.namelen, e->body_len);
			ck_assert_uint_lt(used + d.namelen + 1, cap);
			memcpy(names + used, e->body + at + sizeof(d), d.namelen);
			used += d.namelen;
			names[used++] = '/';
			names[used] = '\0';
			if (plus) {
				struct fuse_entry_out eo;

				memcpy(&eo, e->body + pos, sizeof(eo));
				/* Every entry the guest is given is one more lookup to forget. */
				if (eo.nodeid)
					fs_forget_(e, eo.nodeid, 1);
			}
			off = d.off;
			pos += FUSE_DIRENT_ALIGN(at - pos + sizeof(d) + d.namelen);
		}
	}
	ck_assert_int_eq(fs_release_(e, dir, fh, true), 0);
	return err;
}

void fs_forget_(struct fs_env *e, uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = {.nlookup = n};
	struct fuse_msg m = {
		.opcode = FUSE_FORGET, .nodeid = node, .arg = &in, .arg_len = sizeof(in)};
	size_t len = fuse_msg_build(&m, e->in, 4096);

	/* No reply, not even with room for one. */
	ck_assert_uint_eq(fs_env_raw(e, e->in, len, 4096), 0);
}
