/*
 * crosvm's sub-option syntax: "key=value,flag,key=value". The first key name may be left out
 * ("-b disk.img,ro" means path=disk.img); bare keys are booleans (true). Parsing is bounded and
 * allocation-free: items point into a caller-owned copy of the string.
 */
#ifndef CROSVM_CORE_VMM_KVLIST_H
#define CROSVM_CORE_VMM_KVLIST_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

#define KVLIST_MAX 16

struct kv_item {
	char *key;
	char *value; /* NULL for a bare key */
};

struct kvlist {
	char *buf;
	struct kv_item items[KVLIST_MAX];
	unsigned nr;
};

/* Splits s. A first item without '=' gets `first_key` as its key when first_key is set and the
 * item is not one of `flags` (NULL-terminated list of known boolean keys). */
int kvlist_parse(struct kvlist *l, const char *s, const char *first_key,
		 const char *const *flags) MUST_CHECK;
void kvlist_free(struct kvlist *l);
/* A boolean: bare key or true/false/1/0; -EINVAL otherwise. */
int kv_bool(const struct kv_item *it, bool *out) MUST_CHECK;

#endif
