#include "cmdline.h"
#include "str.h"

/* Finds the word for key: returns its value (after '=') or "" for a bare key, or NULL. */
static const char *find(const char *s, const char *key, bool *has_value)
{
	size_t klen = strlen(key);

	while (*s) {
		const char *word;
		bool quoted = false;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		word = s;
		if (!strncmp(word, key, klen) &&
		    (word[klen] == '=' || word[klen] == ' ' || word[klen] == '\t' ||
		     word[klen] == '\n' || !word[klen])) {
			*has_value = word[klen] == '=';
			return *has_value ? word + klen + 1 : word + klen;
		}
		for (; *s && (quoted || (*s != ' ' && *s != '\t' && *s != '\n')); s++) {
			if (*s == '"')
				quoted = !quoted;
		}
	}
	return NULL;
}

int cmdline_get(const char *cmdline, const char *key, char *val, size_t size)
{
	bool has_value, quoted = false;
	const char *v = find(cmdline, key, &has_value);
	size_t n = 0;
	int rc = 0;

	if (!v)
		return -ENOENT;
	if (!size)
		return -E2BIG;
	if (has_value) {
		for (; *v && (quoted || (*v != ' ' && *v != '\t' && *v != '\n')); v++) {
			if (*v == '"') {
				quoted = !quoted;
				continue;
			}
			if (n + 1 >= size) {
				rc = -E2BIG;
				break;
			}
			val[n++] = *v;
		}
	}
	val[n] = '\0';
	return rc;
}

bool cmdline_has(const char *cmdline, const char *key)
{
	bool has_value;

	return find(cmdline, key, &has_value) != NULL;
}

uint64_t cmdline_u64(const char *cmdline, const char *key, uint64_t def)
{
	char buf[24];
	uint64_t v;

	if (cmdline_get(cmdline, key, buf, sizeof(buf)) || str_to_u64(buf, &v))
		return def;
	return v;
}
