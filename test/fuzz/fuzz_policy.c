/*
 * libFuzzer target for the seccomp policy compiler: the input is a policy file's text, compiled
 * into a libseccomp filter context that is released, never loaded.
 */
#include "sandbox/policy.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every included name is the input again (so nesting and cycles are reached), except names
 * containing "missing", which exercise a resolver failure. */
static int resolve_input(void *ctx, const char *name, char **text)
{
	if (strstr(name, "missing"))
		return -ENOENT;
	*text = strdup(ctx);
	return *text ? 0 : -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum policy_default defaults[] = {
		POLICY_DEFAULT_KILL,
		POLICY_DEFAULT_LOG,
		POLICY_DEFAULT_TRAP,
	};
	char *text = malloc(size + 1);
	struct policy_opts opts = {
		.def = defaults[size % 3],
		.resolve = resolve_input,
		.resolve_ctx = text,
	};
	scmp_filter_ctx ctx = NULL;
	char err[256];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (policy_compile("fuzz.policy", &opts, &ctx, err, sizeof(err)) == 0)
		seccomp_release(ctx);
	free(text);
	return 0;
}
