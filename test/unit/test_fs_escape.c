/*
 * Escapes from the shared directory, tried with hand-built FUSE requests against the server
 * (virtio/fs_server.c): ".." and other non-components as names, absolute and relative
 * symlinks that point out (followed by no request, whatever the request), a symlink swapped in
 * for a directory while lookups run, and a deleted directory still held by node ID and handle.
 * Next to the shared directory is outside/secret: no request may read it, change it or create
 * anything next to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "test/unit/fs_env.h"
#include "test/unit/testutil.h"

#define ROOT FUSE_ROOT_ID

static struct stat secret_stat(struct fs_env *e)
{
	struct stat st;

	ck_assert_int_eq(stat(fs_env_path(e, e->outside, "secret"), &st), 0);
	return st;
}

/* outside/ still holds exactly the secret, unchanged in contents, mode, owner and times. */
static void assert_outside_untouched(struct fs_env *e, const struct stat *before)
{
	struct stat st = secret_stat(e);
	char buf[64] = {0};
	int fd, n = 0;
	char list[64];

	ck_assert_uint_eq(st.st_mode, before->st_mode);
	ck_assert_uint_eq(st.st_uid, before->st_uid);
	ck_assert_uint_eq(st.st_gid, before->st_gid);
	ck_assert_uint_eq(st.st_size, before->st_size);
	ck_assert_int_eq(st.st_mtim.tv_sec, before->st_mtim.tv_sec);
	ck_assert_int_eq(st.st_mtim.tv_nsec, before->st_mtim.tv_nsec);
	ck_assert_uint_eq(st.st_nlink, 1);
	fd = open(fs_env_path(e, e->outside, "secret"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(FS_ENV_SECRET));
	close(fd);
	ck_assert_str_eq(buf, FS_ENV_SECRET);
	ck_assert_int_eq(listxattr(fs_env_path(e, e->outside, "secret"), list, sizeof(list)), 0);
	/* Nothing new next to it. */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) = 1", e->outside);
		n = system(cmd);
	}
	ck_assert_int_eq(n, 0);
}

/* The body of the last reply never holds the secret. */
static void assert_no_secret(struct fs_env *e)
{
	ck_assert_ptr_null(memmem(e->body, e->body_len, FS_ENV_SECRET, strlen(FS_ENV_SECRET)));
}

START_TEST(dot_dot_and_other_non_components)
{
	static const char *const bad[] = {"..", ".", "../outside", "/", "a/..", ""};
	struct fuse_mkdir_in mk = {.mode = 0755};
	struct fuse_mknod_in mn = {.mode = S_IFREG | 0600};
	struct fuse_create_in cr = {.flags = O_RDWR, .mode = S_IFREG | 0600};
	struct fuse_rename_in rn = {.newdir = ROOT};
	struct fuse_link_in ln = {.oldnodeid = ROOT};
	struct fs_env e;
	struct stat before;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	before = secret_stat(&e);
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "sub", 0755, NULL), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fuse_msg ms[] = {
			{.opcode = FUSE_LOOKUP, .name = bad[i]},
			{.opcode = FUSE_MKDIR, .arg = &mk, .arg_len = sizeof(mk), .name = bad[i]},
			{.opcode = FUSE_MKNOD, .arg = &mn, .arg_len = sizeof(mn), .name = bad[i]},
			{.opcode = FUSE_CREATE, .arg = &cr, .arg_len = sizeof(cr), .name = bad[i]},
			{.opcode = FUSE_SYMLINK, .name = bad[i], .name2 = "target"},
			{.opcode = FUSE_UNLINK, .name = bad[i]},
			{.opcode = FUSE_RMDIR, .name = bad[i]},
			{.opcode = FUSE_RENAME,
			 .arg = &rn,
			 .arg_len = 8,
			 .name = "sub",
			 .name2 = bad[i]},
			{.opcode = FUSE_RENAME,
			 .arg = &rn,
			 .arg_len = 8,
			 .name = bad[i],
			 .name2 = "x"},
			{.opcode = FUSE_LINK, .arg = &ln, .arg_len = sizeof(ln), .name = bad[i]},
		};

		for (unsigned j = 0; j < sizeof(ms) / sizeof(ms[0]); j++) {
			ms[j].nodeid = ROOT;
			ck_assert_int_eq(fs_env_call(&e, &ms[j], 256), -EINVAL);
		}
	}
	/* ".." at the root, as the guest's kernel would never send it: still nothing. */
	{
		struct fuse_msg m = {.opcode = FUSE_LOOKUP, .nodeid = ROOT, .name = ".."};

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)), -EINVAL);
	}
	assert_outside_untouched(&e, &before);
	fs_env_down(&e);
}
END_TEST

START_TEST(symlinks_pointing_out_are_never_followed)
{
	struct fuse_entry_out abs_dir, rel_dir, abs_file, dangling, ent;
	struct fs_env e;
	struct stat before;
	char target[128];
	uint64_t fh;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	before = secret_stat(&e);
	ck_assert_int_eq(symlink(e.outside, fs_env_path(&e, e.share, "abs")), 0);
	ck_assert_int_eq(symlink("../outside", fs_env_path(&e, e.share, "rel")), 0);
	snprintf(target, sizeof(target), "%s/secret", e.outside);
	ck_assert_int_eq(symlink(target, fs_env_path(&e, e.share, "abs_file")), 0);
	snprintf(target, sizeof(target), "%s/made", e.outside);
	ck_assert_int_eq(symlink(target, fs_env_path(&e, e.share, "dangling")), 0);

	/* Looked up, a symlink is itself: its target is the guest's to resolve, in the guest. */
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "abs", &abs_dir), 0);
	ck_assert(S_ISLNK(abs_dir.attr.mode));
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "rel", &rel_dir), 0);
	ck_assert(S_ISLNK(rel_dir.attr.mode));
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "abs_file", &abs_file), 0);
	ck_assert(S_ISLNK(abs_file.attr.mode));
	ck_assert_uint_ne(abs_file.attr.ino, before.st_ino);
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "dangling", &dangling), 0);

	/* Through a symlink's node ID as a directory: nothing is found, nothing is made. */
	{
		uint64_t dirs[] = {abs_dir.nodeid, rel_dir.nodeid};

		for (unsigned i = 0; i < 2; i++) {
			struct fuse_create_in cr = {.flags = O_RDWR, .mode = S_IFREG | 0644};
			struct fuse_msg c = {.opcode = FUSE_CREATE,
					     .nodeid = dirs[i],
					     .arg = &cr,
					     .arg_len = sizeof(cr),
					     .name = "made"};
			struct fuse_msg sl = {.opcode = FUSE_SYMLINK,
					      .nodeid = dirs[i],
					      .name = "made",
					      .name2 = "x"};
			struct fuse_msg un = {
				.opcode = FUSE_UNLINK, .nodeid = dirs[i], .name = "secret"};

			ck_assert_int_eq(fs_lookup_(&e, dirs[i], "secret", &ent), -ENOTDIR);
			ck_assert_int_eq(fs_mkdir_(&e, dirs[i], "made", 0755, &ent), -ENOTDIR);
			ck_assert_int_eq(fs_env_call(&e, &c, 256), -ENOTDIR);
			ck_assert_int_eq(fs_env_call(&e, &sl, 256), -ENOTDIR);
			ck_assert_int_eq(fs_env_call(&e, &un, 0), -ENOTDIR);
			ck_assert_int_eq(fs_open_(&e, dirs[i], 0, true, &fh), -ENOTDIR);
		}
	}
	/* Opening a symlink to a file: refused, not the file it names. */
	ck_assert_int_eq(fs_open_(&e, abs_file.nodeid, O_RDONLY, false, &fh), -ENXIO);
	ck_assert_int_eq(fs_open_(&e, abs_file.nodeid, O_RDWR | O_TRUNC, false, &fh), -ENXIO);
	/* CREATE over a symlink's name (without O_EXCL): no open through it, no file made. */
	ck_assert_int_eq(fs_create_(&e, ROOT, "dangling", O_RDWR, 0644, &ent, &fh), -EEXIST);
	ck_assert_int_eq(fs_create_(&e, ROOT, "abs_file", O_RDWR | O_TRUNC, 0644, &ent, &fh),
			 -EEXIST);
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "dangling", 0755, &ent), -EEXIST);
	/* Attributes of the symlink, never of what it names. */
	{
		struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0777};
		struct fuse_msg m = {.opcode = FUSE_SETATTR,
				     .nodeid = abs_file.nodeid,
				     .arg = &sa,
				     .arg_len = sizeof(sa)};
		struct fuse_setxattr_in sx = {.size = 1};
		struct fuse_msg x = {.opcode = FUSE_SETXATTR,
				     .nodeid = abs_file.nodeid,
				     .arg = &sx,
				     .arg_len = 8,
				     .name = "user.escape",
				     .data = "x",
				     .data_len = 1};
		struct fuse_getxattr_in gx = {.size = 64};
		struct fuse_msg gm = {.opcode = FUSE_GETXATTR,
				      .nodeid = abs_file.nodeid,
				      .arg = &gx,
				      .arg_len = sizeof(gx),
				      .name = "user.escape"};

		/* Each may fail (a symlink has no mode of its own); none may reach the secret. */
		(void)fs_env_call(&e, &m, sizeof(struct fuse_attr_out));
		sa = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 0};
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -EINVAL);
		sa = (struct fuse_setattr_in){.valid = FATTR_MTIME, .mtime = 12345};
		(void)fs_env_call(&e, &m, sizeof(struct fuse_attr_out));
		sa = (struct fuse_setattr_in){.valid = FATTR_UID | FATTR_GID, .uid = 77, .gid = 77};
		(void)fs_env_call(&e, &m, sizeof(struct fuse_attr_out));
		(void)fs_env_call(&e, &x, 0);
		(void)fs_env_call(&e, &gm, 64);
		assert_no_secret(&e);
	}
	/* LINK of the symlink's inode links the symlink, inside. */
	{
		struct fuse_link_in li = {.oldnodeid = abs_file.nodeid};
		struct fuse_msg m = {.opcode = FUSE_LINK,
				     .nodeid = ROOT,
				     .arg = &li,
				     .arg_len = sizeof(li),
				     .name = "linked"};
		struct stat st;

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(ent)), 0);
		ck_assert_int_eq(lstat(fs_env_path(&e, e.share, "linked"), &st), 0);
		ck_assert(S_ISLNK(st.st_mode));
	}
	/* READLINK tells the guest the target, as text; nothing more. */
	{
		struct fuse_msg m = {.opcode = FUSE_READLINK, .nodeid = abs_file.nodeid};

		ck_assert_int_eq(fs_env_call(&e, &m, 4096), 0);
		assert_no_secret(&e);
	}
	/* A directory listing through a symlink is no listing. */
	{
		char names[256];

		ck_assert_int_eq(fs_list_(&e, abs_dir.nodeid, false, names, sizeof(names)),
				 -ENOTDIR);
	}
	assert_outside_untouched(&e, &before);
	fs_env_down(&e);
}
END_TEST

struct flipper {
	struct fs_env *e;
	atomic_bool stop;
	atomic_ulong flips;
};

/* Swaps share/flip (a directory, or a symlink to outside/) with share/other, forever. */
static void *flip(void *arg)
{
	struct flipper *f = arg;
	char a[512], b[512];

	snprintf(a, sizeof(a), "%s/flip", f->e->share);
	snprintf(b, sizeof(b), "%s/other", f->e->share);
	while (!atomic_load(&f->stop)) {
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&f->flips, 1);
	}
	return NULL;
}

START_TEST(a_symlink_swapped_in_during_lookups)
{
	struct flipper f = {0};
	struct fs_env e;
	struct stat before, outside_dir;
	pthread_t t;
	unsigned found = 0, links = 0;
	int fd;

	fs_env_up(&e, 1024, 64);
	fs_env_init(&e);
	before = secret_stat(&e);
	ck_assert_int_eq(stat(e.outside, &outside_dir), 0);
	ck_assert_int_eq(mkdir(fs_env_path(&e, e.share, "flip"), 0755), 0);
	fd = open(fs_env_path(&e, e.share, "flip/secret"), O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "INSIDE", 6), 6);
	close(fd);
	ck_assert_int_eq(symlink(e.outside, fs_env_path(&e, e.share, "other")), 0);
	f.e = &e;
	ck_assert_int_eq(pthread_create(&t, NULL, flip, &f), 0);
	/*
	 * Each round looks the name up while it flips, then goes one level down through what it
	 * got. A fixed number of rounds, no timing: whichever way the race falls each time, the
	 * outside directory and its secret must never come back.
	 */
	for (int i = 0; i < 3000; i++) {
		struct fuse_entry_out d, s;
		uint64_t fh;
		char buf[64];
		size_t n;

		if (fs_lookup_(&e, ROOT, "flip", &d) != 0)
			continue;
		ck_assert(!(d.attr.ino == outside_dir.st_ino && S_ISDIR(d.attr.mode)));
		if (S_ISLNK(d.attr.mode))
			links++;
		if (fs_lookup_(&e, d.nodeid, "secret", &s) == 0) {
			ck_assert_uint_ne(s.attr.ino, before.st_ino);
			if (fs_open_(&e, s.nodeid, O_RDONLY, false, &fh) == 0) {
				ck_assert_int_eq(
					fs_read_(&e, s.nodeid, fh, 0, buf, sizeof(buf), &n), 0);
				ck_assert_uint_eq(n, 6);
				ck_assert(memcmp(buf, "INSIDE", 6) == 0);
				ck_assert_int_eq(fs_release_(&e, s.nodeid, fh, false), 0);
				found++;
			}
			fs_forget_(&e, s.nodeid, 1);
		}
		fs_forget_(&e, d.nodeid, 1);
	}
	atomic_store(&f.stop, true);
	pthread_join(t, NULL);
	/* The race ran both ways (or the test proves nothing). */
	ck_assert_uint_gt(atomic_load(&f.flips), 0);
	ck_assert_uint_gt(found, 0);
	ck_assert_uint_gt(links, 0);
	assert_outside_untouched(&e, &before);
	fs_env_down(&e);
}
END_TEST

START_TEST(a_deleted_directory_held_by_id_and_handle)
{
	struct fuse_entry_out d, host_d, f, ent;
	struct fs_env e;
	struct stat before;
	char names[256];
	uint64_t dh, fh;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	before = secret_stat(&e);
	/* One removed by the guest, one by the host under the guest's feet. */
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "gone", 0755, &d), 0);
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "host_gone", 0755, &host_d), 0);
	ck_assert_int_eq(fs_create_(&e, ROOT, "f", O_RDWR, 0644, &f, &fh), 0);
	ck_assert_int_eq(fs_open_(&e, d.nodeid, 0, true, &dh), 0);
	{
		struct fuse_msg rm = {.opcode = FUSE_RMDIR, .nodeid = ROOT, .name = "gone"};

		ck_assert_int_eq(fs_env_call(&e, &rm, 0), 0);
	}
	ck_assert_int_eq(rmdir(fs_env_path(&e, e.share, "host_gone")), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t dir = i ? host_d.nodeid : d.nodeid;
		struct fuse_create_in cr = {.flags = O_RDWR, .mode = S_IFREG | 0644};
		struct fuse_mknod_in mn = {.mode = S_IFREG | 0644};
		struct fuse_link_in li = {.oldnodeid = f.nodeid};
		struct fuse_rename_in rn = {.newdir = dir};
		struct fuse_msg ms[] = {
			{.opcode = FUSE_CREATE, .arg = &cr, .arg_len = sizeof(cr), .name = "x"},
			{.opcode = FUSE_MKNOD, .arg = &mn, .arg_len = sizeof(mn), .name = "x"},
			{.opcode = FUSE_SYMLINK, .name = "x", .name2 = "y"},
			{.opcode = FUSE_LINK, .arg = &li, .arg_len = sizeof(li), .name = "x"},
		};

		ck_assert_int_eq(fs_lookup_(&e, dir, "x", &ent), -ENOENT);
		ck_assert_int_eq(fs_mkdir_(&e, dir, "x", 0755, &ent), -ENOENT);
		for (unsigned j = 0; j < sizeof(ms) / sizeof(ms[0]); j++) {
			ms[j].nodeid = dir;
			ck_assert_int_eq(fs_env_call(&e, &ms[j], 256), -ENOENT);
		}
		/* Moving a file into it. */
		{
			struct fuse_msg m = {.opcode = FUSE_RENAME,
					     .nodeid = ROOT,
					     .arg = &rn,
					     .arg_len = sizeof(rn),
					     .name = "f",
					     .name2 = "x"};

			ck_assert_int_eq(fs_env_call(&e, &m, 0), -ENOENT);
		}
	}
	/* Its open handle lists nothing (the host says ENOENT for a removed directory). */
	{
		struct fuse_read_in rd = {.fh = dh, .size = 4096};
		struct fuse_msg m = {.opcode = FUSE_READDIRPLUS,
				     .nodeid = d.nodeid,
				     .arg = &rd,
				     .arg_len = sizeof(rd)};
		int err = fs_env_call(&e, &m, 4096);

		ck_assert(err == 0 || err == -ENOENT);
		ck_assert_ptr_null(memmem(e.body, e.body_len, "secret", 6));
		ck_assert_int_eq(fs_release_(&e, d.nodeid, dh, true), 0);
	}
	ck_assert_int_eq(fs_list_(&e, ROOT, true, names, sizeof(names)), 0);
	ck_assert_ptr_nonnull(strstr(names, "f/"));
	ck_assert_ptr_null(strstr(names, "gone/"));
	ck_assert_ptr_null(strstr(names, "x/"));
	assert_outside_untouched(&e, &before);
	fs_env_down(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_escape");
	TCase *tc = tcase_create("escape");

	tcase_add_test(tc, dot_dot_and_other_non_components);
	tcase_add_test(tc, symlinks_pointing_out_are_never_followed);
	tcase_add_test(tc, a_symlink_swapped_in_during_lookups);
	tcase_add_test(tc, a_deleted_directory_held_by_id_and_handle);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
