#include "core/vmm/cli_shared_dir.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FIELDS    16
#define MAX_ID_RANGES 32 /* far fewer than the kernel's 340, and all anyone needs */

/* crosvm's fs keys this build does not do; their "false" is what it does, so that is fine. */
static const char *const false_only[] = {
	"dax",
	"use_dax",
	"posix_acl",
	"rewrite-security-xattrs",
	"rewrite_security_xattrs",
	"ascii_casefold",
	"security_ctx",
	NULL,
};
/* crosvm keys refused whatever their value. */
static const char *const unsupported[] = {
	"uid",
	"gid",
	"privileged_quota_uids",
	"max_dynamic_perm",
	"max_dynamic_xattr",
	"ugid_map",
	"unmap_guest_memory_on_fork",
	NULL,
};

static bool in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

struct range {
	uint64_t inner, outer, count;
};

static bool overlap(uint64_t a, uint64_t b, uint64_t n, uint64_t m)
{
	return a < b + m && b < a + n;
}

int cli_parse_id_map(const char *s, char **out)
{
	struct range r[MAX_ID_RANGES];
	unsigned nr = 0;
	size_t cap = MAX_ID_RANGES * 36 + 1, used = 0;
	char *text, *copy, *save = NULL, *entry;
	int ret = 0;

	copy = strdup(s);
	text = malloc(cap);
	if (!copy || !text) {
		free(copy);
		free(text);
		return -ENOMEM;
	}
	text[0] = '\0';
	for (entry = strtok_r(copy, ",", &save); entry; entry = strtok_r(NULL, ",", &save)) {
		char *f[4], *fsave = NULL;
		unsigned n = 0;

		for (char *t = strtok_r(entry, " \t", &fsave); t && n < 4;
		     t = strtok_r(NULL, " \t", &fsave))
			f[n++] = t;
		if (n != 3 || nr == MAX_ID_RANGES || parse_u64(f[0], &r[nr].inner) < 0 ||
		    parse_u64(f[1], &r[nr].outer) < 0 || parse_u64(f[2], &r[nr].count) < 0 ||
		    !r[nr].count || r[nr].inner + r[nr].count > (1ull << 32) ||
		    r[nr].outer + r[nr].count > (1ull << 32)) {
			ret = -EINVAL;
			break;
		}
		for (unsigned i = 0; i < nr; i++)
			if (overlap(r[i].inner, r[nr].inner, r[i].count, r[nr].count) ||
			    overlap(r[i].outer, r[nr].outer, r[i].count, r[nr].count))
				ret = -EINVAL;
		if (ret < 0)
			break;
		used += (size_t)snprintf(text + used, cap - used, "%llu %llu %llu\n",
					 (unsigned long long)r[nr].inner,
					 (unsigned long long)r[nr].outer,
					 (unsigned long long)r[nr].count);
		nr++;
	}
	free(copy);
	if (ret == 0 && !nr)
		ret = -EINVAL;
	if (ret < 0) {
		free(text);
		return ret;
	}
	*out = text;
	return 0;
}

void cli_shared_dir_free(struct fs_config *d)
{
	free(d->path);
	free(d->tag);
	free(d->uid_map);
	free(d->gid_map);
	memset(d, 0, sizeof(*d));
}

/* One KEY=VALUE field; -EINVAL after saying what is wrong. */
static int parse_field(char *field, struct fs_config *d, bool *have_type, const struct logger *lg)
{
	char *eq = strchr(field, '=');
	const char *key = field, *v;
	bool b;

	if (!eq) {
		log_err(lg, "--shared-dir: '%s' is not of the form key=value", field);
		return -EINVAL;
	}
	*eq = '\0';
	v = eq + 1;
	if (strcmp(key, "type") == 0) {
		if (strcmp(v, "fs") == 0 || strcmp(v, "FS") == 0) {
			*have_type = true;
			return 0;
		}
		if (strcmp(v, "p9") == 0 || strcmp(v, "P9") == 0 || strcmp(v, "9p") == 0 ||
		    strcmp(v, "9P") == 0) {
			log_err(lg,
				"--shared-dir: type=%s (virtio-9p) is not supported by this "
				"build; use type=fs (virtio-fs)",
				v);
			return -EINVAL;
		}
		log_err(lg, "--shared-dir: type must be fs or p9, not '%s'", v);
		return -EINVAL;
	}
	if (strcmp(key, "cache") == 0 || strcmp(key, "cache_policy") == 0 ||
	    strcmp(key, "cache-policy") == 0) {
		if (strcmp(v, "never") == 0)
			d->server.cache = FS_CACHE_NEVER;
		else if (strcmp(v, "auto") == 0)
			d->server.cache = FS_CACHE_AUTO;
		else if (strcmp(v, "always") == 0)
			d->server.cache = FS_CACHE_ALWAYS;
		else {
			log_err(lg, "--shared-dir: cache must be never, auto or always, not '%s'",
				v);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "timeout") == 0 || strcmp(key, "negative_timeout") == 0) {
		uint64_t secs;

		if (parse_u64(v, &secs) < 0 || secs > UINT32_MAX) {
			log_err(lg, "--shared-dir: %s=%s is not a number of seconds", key, v);
			return -EINVAL;
		}
		*(key[0] == 't' ? &d->server.timeout : &d->server.negative_timeout) = secs;
		return 0;
	}
	if (strcmp(key, "writeback") == 0) {
		if (parse_bool(v, &d->server.writeback) < 0) {
			log_err(lg, "--shared-dir: writeback=%s is not true or false", v);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "uidmap") == 0 || strcmp(key, "gidmap") == 0) {
		char **map = key[0] == 'u' ? &d->uid_map : &d->gid_map;

		free(*map);
		*map = NULL;
		if (cli_parse_id_map(v, map) < 0) {
			log_err(lg,
				"--shared-dir: %s='%s' is not \"inner outer count[,inner outer "
				"count]...\" with ranges that do not overlap (at most %d)",
				key, v, MAX_ID_RANGES);
			return -EINVAL;
		}
		return 0;
	}
	if (in_list(false_only, key)) {
		if (parse_bool(v, &b) < 0 || b) {
			log_err(lg,
				"--shared-dir: %s=%s is not supported by this build (only false)",
				key, v);
			return -EINVAL;
		}
		return 0;
	}
	if (in_list(unsupported, key)) {
		log_err(lg, "--shared-dir: %s= is not supported by this build", key);
		return -EINVAL;
	}
	log_err(lg, "--shared-dir: unknown key '%s'", key);
	return -EINVAL;
}

static int check_dir(struct fs_config *d, const struct vm_config *cfg, const struct logger *lg)
{
	struct stat st;

	if (!*d->path || !*d->tag) {
		log_err(lg, "--shared-dir: PATH:TAG needs both a path and a tag");
		return -EINVAL;
	}
	if (strlen(d->tag) > VIRTIO_FS_TAG_MAX) {
		log_err(lg, "--shared-dir: tag '%s' is longer than %d bytes", d->tag,
			VIRTIO_FS_TAG_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_shared_dirs; i++) {
		if (strcmp(cfg->shared_dirs[i].tag, d->tag) == 0) {
			log_err(lg, "--shared-dir: tag '%s' is given twice", d->tag);
			return -EINVAL;
		}
	}
	if (stat(d->path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err(lg, "--shared-dir: %s is not a directory", d->path);
		return -EINVAL;
	}
	if (cfg->nr_shared_dirs >= CONFIG_MAX_SHARED_DIRS) {
		log_err(lg, "--shared-dir: at most %d shared directories", CONFIG_MAX_SHARED_DIRS);
		return -EINVAL;
	}
	return 0;
}

int cli_parse_shared_dir(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct fs_config d = {
		.server = {.cache = FS_CACHE_AUTO, .timeout = VIRTIO_FS_DEFAULT_TIMEOUT}};
	char *copy = strdup(s), *field[MAX_FIELDS], *p;
	bool have_type = false;
	unsigned n = 0;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (p = copy; n < MAX_FIELDS; n++) {
		field[n] = p;
		p = strchr(p, ':');
		if (!p) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (p || n < 2) {
		log_err(lg, "--shared-dir: '%s' is not PATH:TAG[:key=value]...", s);
		ret = -EINVAL;
		goto out;
	}
	d.path = strdup(field[0]);
	d.tag = strdup(field[1]);
	if (!d.path || !d.tag) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 2; i < n && ret == 0; i++)
		ret = parse_field(field[i], &d, &have_type, lg);
	if (ret == 0 && !have_type) {
		/* crosvm's default type is p9: a command line without type= must not change. */
		log_err(lg,
			"--shared-dir %s: without type= this is virtio-9p (crosvm's default), "
			"which is not supported by this build; add :type=fs for virtio-fs",
			field[0]);
		ret = -EINVAL;
	}
	if (ret == 0)
		ret = check_dir(&d, cfg, lg);
	if (ret == 0) {
		cfg->shared_dirs[cfg->nr_shared_dirs++] = d;
		memset(&d, 0, sizeof(d));
	}
out:
	cli_shared_dir_free(&d);
	free(copy);
	return ret;
}
