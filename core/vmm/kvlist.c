#include "core/vmm/kvlist.h"

#include <stdlib.h>
#include <string.h>

static bool is_flag(const char *k, const char *const *flags)
{
	for (; flags && *flags; flags++)
		if (strcmp(k, *flags) == 0)
			return true;
	return false;
}

int kvlist_parse(struct kvlist *l, const char *s, const char *first_key, const char *const *flags)
{
	char *p, *save = NULL, *tok;

	*l = (struct kvlist){0};
	l->buf = strdup(s ? s : "");
	if (!l->buf)
		return -ENOMEM;
	p = l->buf;
	while ((tok = strtok_r(p, ",", &save))) {
		char *eq = strchr(tok, '=');
		struct kv_item *it;

		p = NULL;
		if (l->nr >= KVLIST_MAX)
			goto inval;
		it = &l->items[l->nr];
		if (eq) {
			*eq = '\0';
			it->key = tok;
			it->value = eq + 1;
		} else if (l->nr == 0 && first_key && !is_flag(tok, flags)) {
			it->key = (char *)first_key;
			it->value = tok;
		} else {
			it->key = tok;
			it->value = NULL;
		}
		if (!*it->key)
			goto inval;
		l->nr++;
	}
	return 0;
inval:
	kvlist_free(l);
	return -EINVAL;
}

void kvlist_free(struct kvlist *l)
{
	free(l->buf);
	*l = (struct kvlist){0};
}

int kv_bool(const struct kv_item *it, bool *out)
{
	if (!it->value || strcmp(it->value, "true") == 0 || strcmp(it->value, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(it->value, "false") == 0 || strcmp(it->value, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}
