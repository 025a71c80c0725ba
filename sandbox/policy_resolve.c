/*
 * The ready-made policy resolvers (policy.h): policy text from the built-in table or from a
 * --seccomp-policy-dir, looked up by the last component of the name only.
 */
#include "sandbox/policy.h"

#include "core/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *last_component(const char *name)
{
	const char *slash = strrchr(name, '/');

	return slash ? slash + 1 : name;
}

int policy_resolve_table(void *ctx, const char *name, char **text)
{
	const struct policy_text *t = ctx;
	const char *base = last_component(name);

	for (; t && t->name; t++) {
		if (strcmp(t->name, base) == 0) {
			*text = strdup(t->text);
			return *text ? 0 : -ENOMEM;
		}
	}
	return -ENOENT;
}

int policy_resolve_dir(void *ctx, const char *name, char **text)
{
	const char *dir = ctx, *base = last_component(name);
	int dfd = -1, fd = -1, rc;
	struct stat st;
	char *buf = NULL;

	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -ENOENT;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* O_NONBLOCK: a FIFO planted in the directory must not hang the VMM. */
	fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_size > POLICY_MAX_FILE_SIZE) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_full(fd, buf, (size_t)st.st_size);
	if (rc)
		goto out;
	buf[st.st_size] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	close_fd(&fd);
	close_fd(&dfd);
	return rc;
}
