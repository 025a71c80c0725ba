#include "virtio/fuse.h"

#include <errno.h>
#include <string.h>

/* What follows an opcode's fixed structure. */
enum names {
	N_NONE,	   /* nothing */
	N_NAME,	   /* one component name */
	N_NAME2,   /* two component names (RENAME, RENAME2) */
	N_SYMLINK, /* a component name, then the link's target */
	N_XNAME,   /* an attribute name */
	N_XVALUE,  /* an attribute name, then its value (SETXATTR) */
	N_FORGETS, /* BATCH_FORGET's array */
	N_WRITE,   /* WRITE's data (not in the buffer) */
};

struct op_desc {
	struct fuse_op_info info;
	uint32_t fixed;	    /* size of the fixed structure */
	bool fixed_max;	    /* fixed is a maximum: shorter (older) structures are zero-extended */
	uint32_t fixed_min; /* with fixed_max: the shortest accepted */
	enum names names;
};

#define FIXED(n, x)                                                                                \
	{                                                                                          \
		.name = (n), .reply = FUSE_REPLY_FIXED, .reply_len = (x)                           \
	}
#define VARIABLE(n)                                                                                \
	{                                                                                          \
		.name = (n), .reply = FUSE_REPLY_VARIABLE                                          \
	}
#define NO_REPLY(n)                                                                                \
	{                                                                                          \
		.name = (n), .reply = FUSE_REPLY_NONE                                              \
	}
#define ENTRY sizeof(struct fuse_entry_out)
#define ATTR  sizeof(struct fuse_attr_out)

static const struct op_desc ops[] = {
	[FUSE_LOOKUP] = {FIXED("LOOKUP", ENTRY), 0, false, 0, N_NAME},
	[FUSE_FORGET] = {NO_REPLY("FORGET"), sizeof(struct fuse_forget_in), false, 0, N_NONE},
	[FUSE_GETATTR] = {FIXED("GETATTR", ATTR), sizeof(struct fuse_getattr_in), false, 0, N_NONE},
	[FUSE_SETATTR] = {FIXED("SETATTR", ATTR), sizeof(struct fuse_setattr_in), false, 0, N_NONE},
	[FUSE_READLINK] = {VARIABLE("READLINK"), 0, false, 0, N_NONE},
	[FUSE_SYMLINK] = {FIXED("SYMLINK", ENTRY), 0, false, 0, N_SYMLINK},
	[FUSE_MKNOD] = {FIXED("MKNOD", ENTRY), sizeof(struct fuse_mknod_in), false, 0, N_NAME},
	[FUSE_MKDIR] = {FIXED("MKDIR", ENTRY), sizeof(struct fuse_mkdir_in), false, 0, N_NAME},
	[FUSE_UNLINK] = {FIXED("UNLINK", 0), 0, false, 0, N_NAME},
	[FUSE_RMDIR] = {FIXED("RMDIR", 0), 0, false, 0, N_NAME},
	[FUSE_RENAME] = {FIXED("RENAME", 0), sizeof(struct fuse_rename_in), false, 0, N_NAME2},
	[FUSE_LINK] = {FIXED("LINK", ENTRY), sizeof(struct fuse_link_in), false, 0, N_NAME},
	[FUSE_OPEN] = {FIXED("OPEN", sizeof(struct fuse_open_out)), sizeof(struct fuse_open_in),
		       false, 0, N_NONE},
	[FUSE_READ] = {VARIABLE("READ"), sizeof(struct fuse_read_in), false, 0, N_NONE},
	[FUSE_WRITE] = {FIXED("WRITE", sizeof(struct fuse_write_out)), sizeof(struct fuse_write_in),
			false, 0, N_WRITE},
	[FUSE_STATFS] = {FIXED("STATFS", sizeof(struct fuse_statfs_out)), 0, false, 0, N_NONE},
	[FUSE_RELEASE] = {FIXED("RELEASE", 0), sizeof(struct fuse_release_in), false, 0, N_NONE},
	[FUSE_FSYNC] = {FIXED("FSYNC", 0), sizeof(struct fuse_fsync_in), false, 0, N_NONE},
	/* Without FUSE_SETXATTR_EXT (never offered) the kernel sends the old 8-byte structure. */
	[FUSE_SETXATTR] = {FIXED("SETXATTR", 0), FUSE_COMPAT_SETXATTR_IN_SIZE, false, 0, N_XVALUE},
	[FUSE_GETXATTR] = {VARIABLE("GETXATTR"), sizeof(struct fuse_getxattr_in), false, 0,
			   N_XNAME},
	[FUSE_LISTXATTR] = {VARIABLE("LISTXATTR"), sizeof(struct fuse_getxattr_in), false, 0,
			    N_NONE},
	[FUSE_REMOVEXATTR] = {FIXED("REMOVEXATTR", 0), 0, false, 0, N_XNAME},
	[FUSE_FLUSH] = {FIXED("FLUSH", 0), sizeof(struct fuse_flush_in), false, 0, N_NONE},
	/* The init structure grew in 7.36; a kernel older than that sends the first 16 bytes. */
	[FUSE_INIT] = {VARIABLE("INIT"), sizeof(struct fuse_init_in), true, 16, N_NONE},
	[FUSE_OPENDIR] = {FIXED("OPENDIR", sizeof(struct fuse_open_out)),
			  sizeof(struct fuse_open_in), false, 0, N_NONE},
	[FUSE_READDIR] = {VARIABLE("READDIR"), sizeof(struct fuse_read_in), false, 0, N_NONE},
	[FUSE_RELEASEDIR] = {FIXED("RELEASEDIR", 0), sizeof(struct fuse_release_in), false, 0,
			     N_NONE},
	[FUSE_FSYNCDIR] = {FIXED("FSYNCDIR", 0), sizeof(struct fuse_fsync_in), false, 0, N_NONE},
	[FUSE_ACCESS] = {FIXED("ACCESS", 0), sizeof(struct fuse_access_in), false, 0, N_NONE},
	[FUSE_CREATE] = {FIXED("CREATE", ENTRY + sizeof(struct fuse_open_out)),
			 sizeof(struct fuse_create_in), false, 0, N_NAME},
	[FUSE_INTERRUPT] = {NO_REPLY("INTERRUPT"), sizeof(struct fuse_interrupt_in), false, 0,
			    N_NONE},
	[FUSE_DESTROY] = {FIXED("DESTROY", 0), 0, false, 0, N_NONE},
	[FUSE_BATCH_FORGET] = {NO_REPLY("BATCH_FORGET"), sizeof(struct fuse_batch_forget_in), false,
			       0, N_FORGETS},
	[FUSE_FALLOCATE] = {FIXED("FALLOCATE", 0), sizeof(struct fuse_fallocate_in), false, 0,
			    N_NONE},
	[FUSE_READDIRPLUS] = {VARIABLE("READDIRPLUS"), sizeof(struct fuse_read_in), false, 0,
			      N_NONE},
	[FUSE_RENAME2] = {FIXED("RENAME2", 0), sizeof(struct fuse_rename2_in), false, 0, N_NAME2},
	[FUSE_LSEEK] = {FIXED("LSEEK", sizeof(struct fuse_lseek_out)), sizeof(struct fuse_lseek_in),
			false, 0, N_NONE},
	[FUSE_COPY_FILE_RANGE] = {FIXED("COPY_FILE_RANGE", sizeof(struct fuse_write_out)),
				  sizeof(struct fuse_copy_file_range_in), false, 0, N_NONE},
	[FUSE_SYNCFS] = {FIXED("SYNCFS", 0), sizeof(struct fuse_syncfs_in), false, 0, N_NONE},
};

static const struct op_desc *desc(uint32_t opcode)
{
	if (opcode >= ARRAY_SIZE(ops) || !ops[opcode].info.name)
		return NULL;
	return &ops[opcode];
}

const struct fuse_op_info *fuse_op(uint32_t opcode)
{
	const struct op_desc *d = desc(opcode);

	return d ? &d->info : NULL;
}

bool fuse_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > FUSE_NAME_MAX || memchr(name, '/', len))
		return false;
	return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

/*
 * Takes a NUL-terminated string of 1..max bytes from the front of [*p, end); component: it
 * must also be a valid path component.
 */
static int take_string(const uint8_t **p, const uint8_t *end, size_t max, bool component,
		       const char **out)
{
	size_t left = (size_t)(end - *p);
	const uint8_t *nul = memchr(*p, 0, MIN(left, max + 1));
	size_t len;

	if (!nul)
		return -EINVAL;
	len = (size_t)(nul - *p);
	if (!len || (component && !fuse_name_ok((const char *)*p, len)))
		return -EINVAL;
	*out = (const char *)*p;
	*p = nul + 1;
	return 0;
}

static int parse_names(const struct op_desc *d, const uint8_t *p, const uint8_t *end,
		       struct fuse_req *r)
{
	int ret = 0;

	switch (d->names) {
	case N_NONE:
		break;
	case N_NAME:
		ret = take_string(&p, end, FUSE_NAME_MAX, true, &r->name);
		break;
	case N_NAME2:
		ret = take_string(&p, end, FUSE_NAME_MAX, true, &r->name);
		if (ret == 0)
			ret = take_string(&p, end, FUSE_NAME_MAX, true, &r->name2);
		break;
	case N_SYMLINK:
		ret = take_string(&p, end, FUSE_NAME_MAX, true, &r->name);
		if (ret == 0)
			ret = take_string(&p, end, FUSE_LINK_MAX, false, &r->name2);
		break;
	case N_XNAME:
		ret = take_string(&p, end, FUSE_XNAME_MAX, false, &r->name);
		break;
	case N_XVALUE: {
		uint32_t size = r->in.setxattr.size;

		ret = take_string(&p, end, FUSE_XNAME_MAX, false, &r->name);
		if (ret == 0 && (size > FUSE_XATTR_MAX || size != (size_t)(end - p)))
			ret = -EINVAL;
		if (ret == 0) {
			r->data = p;
			r->data_len = size;
			p = end;
		}
		break;
	}
	case N_FORGETS: {
		uint32_t count = r->in.batch_forget.count;

		/* Exactly count entries: a count the bytes do not back is a lie, refused. */
		if ((size_t)(end - p) / sizeof(struct fuse_forget_one) != count ||
		    (size_t)(end - p) % sizeof(struct fuse_forget_one))
			return -EINVAL;
		r->data = p;
		r->data_len = (uint32_t)(end - p);
		r->count = count;
		p = end;
		break;
	}
	case N_WRITE:
		r->data_len = r->in.write.size;
		break;
	}
	if (ret < 0)
		return ret;
	/* Nothing may follow what the opcode carries. */
	return p == end ? 0 : -EINVAL;
}

int fuse_parse(const struct fuse_in_header *h, const uint8_t *args, size_t len, struct fuse_req *r)
{
	const struct op_desc *d = desc(h->opcode);
	const uint8_t *end = args + len;

	memset(r, 0, sizeof(*r));
	r->h = *h;
	if (!d)
		return -ENOSYS;
	if (len > FUSE_MAX_ARGS_LEN)
		return -EINVAL;
	_Static_assert(sizeof(union fuse_args) == 96, "the largest fixed structure");
	if (d->fixed_max) {
		if (len < d->fixed_min)
			return -EINVAL;
		/* Only INIT: what a newer kernel adds past our structure is ignored. */
		memcpy(&r->in, args, MIN(len, d->fixed));
		return 0;
	}
	if (len < d->fixed)
		return -EINVAL;
	if (d->fixed > sizeof(r->in))
		return -EINVAL; /* not reached: the table's sizes all fit */
	if (d->fixed)
		memcpy(&r->in, args, d->fixed);
	return parse_names(d, args + d->fixed, end, r);
}
