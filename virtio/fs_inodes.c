#include "virtio/fs_inodes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INITIAL_SLOTS 1024u
#define ROOT_SLOT     1u

static uint64_t make_id(uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | slot;
}

/* The next generation of a slot; 0 is the root's alone, so node ID 1 is never reused. */
static uint32_t next_gen(uint32_t gen)
{
	return gen + 1 ? gen + 1 : 1;
}

/* ---- inodes ---- */

static uint32_t nbuckets(const struct fs_inodes *t)
{
	uint32_t n = 256;

	while (n < t->max / 2 && n < (1u << 16))
		n <<= 1;
	return n;
}

static uint32_t bucket_of(const struct fs_inodes *t, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (uint32_t)(h >> 32) & (nbuckets(t) - 1);
}

/* Makes room for one more slot below max; 0 or -ENFILE/-ENOMEM. */
static int inodes_grow(struct fs_inodes *t)
{
	uint32_t cap = t->cap ? MIN(t->cap * 2, t->max) : MIN(INITIAL_SLOTS, t->max);
	struct fs_inode *v;

	if (cap <= t->cap)
		return -ENFILE;
	v = realloc(t->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = cap; i-- > MAX(t->cap, 2u);) {
		v[i] = (struct fs_inode){.fd = -1, .next = t->free_head};
		t->free_head = i;
	}
	if (!t->cap)
		v[0] = (struct fs_inode){.fd = -1};
	t->v = v;
	t->cap = cap;
	return 0;
}

static void hash_insert(struct fs_inodes *t, uint32_t slot)
{
	uint32_t b = bucket_of(t, t->v[slot].dev, t->v[slot].ino);

	t->v[slot].next = t->buckets[b];
	t->buckets[b] = slot;
}

static void hash_remove(struct fs_inodes *t, uint32_t slot)
{
	uint32_t *link = &t->buckets[bucket_of(t, t->v[slot].dev, t->v[slot].ino)];

	while (*link && *link != slot)
		link = &t->v[*link].next;
	if (*link)
		*link = t->v[slot].next;
}

int fs_inodes_init(struct fs_inodes *t, uint32_t max_inodes, int root_fd, uint64_t dev,
		   uint64_t ino)
{
	int ret;

	memset(t, 0, sizeof(*t));
	/* Slots: slot 0 is never used. */
	t->max = MAX(max_inodes, 2u) + 1;
	t->buckets = calloc(nbuckets(t), sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	ret = inodes_grow(t);
	if (ret < 0) {
		free(t->buckets);
		return ret;
	}
	t->v[ROOT_SLOT] = (struct fs_inode){
		.fd = root_fd, .gen = 0, .mode = S_IFDIR, .nlookup = 1, .dev = dev, .ino = ino};
	hash_insert(t, ROOT_SLOT);
	t->nr = 1;
	return 0;
}

static void inode_free(struct fs_inodes *t, uint32_t slot)
{
	struct fs_inode *in = &t->v[slot];

	hash_remove(t, slot);
	close_fd(&in->fd);
	in->gen = next_gen(in->gen);
	in->nlookup = 0;
	in->next = t->free_head;
	t->free_head = slot;
	t->nr--;
}

void fs_inodes_clear(struct fs_inodes *t)
{
	for (uint32_t i = ROOT_SLOT + 1; i < t->cap; i++)
		if (t->v[i].fd >= 0)
			inode_free(t, i);
}

void fs_inodes_destroy(struct fs_inodes *t)
{
	if (!t->v)
		return;
	fs_inodes_clear(t);
	close_fd(&t->v[ROOT_SLOT].fd);
	free(t->v);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct fs_inode *fs_inode_get(struct fs_inodes *t, uint64_t nodeid)
{
	uint32_t slot = (uint32_t)nodeid, gen = (uint32_t)(nodeid >> 32);

	if (slot < ROOT_SLOT || slot >= t->cap || t->v[slot].fd < 0 || t->v[slot].gen != gen)
		return NULL;
	return &t->v[slot];
}

uint64_t fs_inode_id(const struct fs_inodes *t, const struct fs_inode *in)
{
	uint32_t slot = (uint32_t)(in - t->v);

	return make_id(slot, in->gen);
}

int fs_inode_lookup(struct fs_inodes *t, int fd, uint64_t dev, uint64_t ino, uint32_t mode,
		    struct fs_inode **out)
{
	uint32_t slot = t->buckets[bucket_of(t, dev, ino)];
	struct fs_inode *in;
	int ret;

	for (; slot; slot = t->v[slot].next) {
		in = &t->v[slot];
		if (in->dev == dev && in->ino == ino) {
			close(fd);
			in->nlookup++;
			*out = in;
			return 0;
		}
	}
	if (!t->free_head) {
		ret = inodes_grow(t);
		if (ret < 0) {
			close(fd);
			return ret;
		}
	}
	slot = t->free_head;
	in = &t->v[slot];
	t->free_head = in->next;
	in->fd = fd;
	in->mode = mode & S_IFMT;
	in->nlookup = 1;
	in->dev = dev;
	in->ino = ino;
	if (!in->gen)
		in->gen = 1;
	hash_insert(t, slot);
	t->nr++;
	*out = in;
	return 0;
}

void fs_inode_forget(struct fs_inodes *t, uint64_t nodeid, uint64_t n)
{
	struct fs_inode *in = fs_inode_get(t, nodeid);

	if (!in || in == &t->v[ROOT_SLOT])
		return;
	/* A guest that forgets more than it looked up only loses the inode sooner. */
	in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
	if (!in->nlookup)
		inode_free(t, (uint32_t)(in - t->v));
}

/* ---- handles ---- */

static int handles_grow(struct fs_handles *t)
{
	uint32_t cap = t->cap ? MIN(t->cap * 2, t->max) : MIN(INITIAL_SLOTS, t->max);
	struct fs_handle *v;

	if (cap <= t->cap)
		return -ENFILE;
	v = realloc(t->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = cap; i-- > MAX(t->cap, 1u);) {
		v[i] = (struct fs_handle){.fd = -1, .next_free = t->free_head};
		t->free_head = i;
	}
	if (!t->cap)
		v[0] = (struct fs_handle){.fd = -1};
	t->v = v;
	t->cap = cap;
	return 0;
}

int fs_handles_init(struct fs_handles *t, uint32_t max_handles)
{
	memset(t, 0, sizeof(*t));
	/* Slot 0 is never used. */
	t->max = MAX(max_handles, 1u) + 1;
	return handles_grow(t);
}

static void handle_free(struct fs_handles *t, struct fs_handle *h)
{
	close_fd(&h->fd);
	h->gen = next_gen(h->gen);
	h->next_free = t->free_head;
	t->free_head = (uint32_t)(h - t->v);
	t->nr--;
}

void fs_handles_clear(struct fs_handles *t)
{
	for (uint32_t i = 1; i < t->cap; i++)
		if (t->v[i].fd >= 0)
			handle_free(t, &t->v[i]);
}

void fs_handles_destroy(struct fs_handles *t)
{
	if (!t->v)
		return;
	fs_handles_clear(t);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

int fs_handle_add(struct fs_handles *t, int fd, bool dir, uint64_t *fh)
{
	struct fs_handle *h;
	uint32_t slot;
	int ret;

	if (!t->free_head) {
		ret = handles_grow(t);
		if (ret < 0) {
			close(fd);
			return ret;
		}
	}
	slot = t->free_head;
	h = &t->v[slot];
	t->free_head = h->next_free;
	h->fd = fd;
	h->dir = dir;
	if (!h->gen)
		h->gen = 1;
	t->nr++;
	*fh = make_id(slot, h->gen);
	return 0;
}

struct fs_handle *fs_handle_get(struct fs_handles *t, uint64_t fh)
{
	uint32_t slot = (uint32_t)fh, gen = (uint32_t)(fh >> 32);

	if (!slot || slot >= t->cap || t->v[slot].fd < 0 || t->v[slot].gen != gen)
		return NULL;
	return &t->v[slot];
}

int fs_handle_release(struct fs_handles *t, uint64_t fh)
{
	struct fs_handle *h = fs_handle_get(t, fh);

	if (!h)
		return -EBADF;
	handle_free(t, h);
	return 0;
}
