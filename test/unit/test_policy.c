/*
 * Seccomp policy compiler: every construct is compiled and then checked by behaviour, in a
 * forked child that loads the filter and makes the syscall. getpid and getppid ignore their
 * arguments but seccomp sees the registers, so they stand in for any argument filter.
 */
#include "core/util.h"
#include "sandbox/policy.h"
#include "sandbox/policy_consts.h"
#include "test/unit/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILLED	 (-1) /* the child died of SIGSYS */
#define LOAD_ERR 250  /* the child could not load the filter */

/*
 * Every test policy starts with this: a child leaves through exit_group, and libseccomp frees
 * the loaded program, which may shrink the heap through brk.
 */
#define BASE "exit_group: 1\nbrk: 1\n"

#ifdef CROSVM_SANITIZER_RUNTIME
/*
 * The test filters allow almost nothing, so ASan must not map memory behind them: its free
 * quarantine otherwise calls mmap right after libseccomp frees the loaded program.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=0";
}
#endif

struct call {
	long nr;
	uint64_t a[6];
};

static struct policy_opts table_opts(const struct policy_text *files, enum policy_default def)
{
	return (struct policy_opts){
		.def = def, .resolve = policy_resolve_table, .resolve_ctx = (void *)files};
}

static int compile_files(const struct policy_text *files, const char *top, enum policy_default def,
			 scmp_filter_ctx *ctx, char *err, size_t len)
{
	struct policy_opts o = table_opts(files, def);

	*ctx = NULL;
	return policy_compile(top, &o, ctx, err, len);
}

static scmp_filter_ctx compile_def(const char *text, enum policy_default def)
{
	const struct policy_text files[] = {{"t.policy", text}, {NULL, NULL}};
	scmp_filter_ctx ctx;
	char err[256];
	int rc = compile_files(files, "t.policy", def, &ctx, err, sizeof(err));

	ck_assert_msg(rc == 0, "compile failed (%d): %s", rc, err);
	ck_assert_ptr_nonnull(ctx);
	return ctx;
}

static scmp_filter_ctx compile(const char *text)
{
	return compile_def(text, POLICY_DEFAULT_KILL);
}

/* Compiles text that must fail and returns the error message through err. */
static int compile_fail(const char *text, char *err, size_t len)
{
	const struct policy_text files[] = {{"t.policy", text}, {NULL, NULL}};
	scmp_filter_ctx ctx;
	int rc = compile_files(files, "t.policy", POLICY_DEFAULT_KILL, &ctx, err, len);

	ck_assert_msg(rc < 0, "compiled although it should not: %s", text);
	ck_assert_ptr_null(ctx);
	return rc;
}

static void expect_error(const char *text, const char *msg)
{
	char err[512];

	ck_assert_int_eq(compile_fail(text, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, msg);
}

static int wait_outcome(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "child ended with status 0x%x",
		      st);
	return KILLED;
}

/* Outcome of one syscall under the filter: 0 (success), its errno, or KILLED. */
static int run_call(scmp_filter_ctx ctx, struct call c)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		long r;

		if (seccomp_load(ctx) != 0)
			_exit(LOAD_ERR);
		r = syscall(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
		syscall(SYS_exit_group, r < 0 ? errno : 0);
	}
	return wait_outcome(pid);
}

static int getpid_args(scmp_filter_ctx ctx, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return run_call(ctx, (struct call){SYS_getpid, {a0, a1, a2, 0, 0, 0}});
}

static int call0(scmp_filter_ctx ctx, long nr)
{
	return run_call(ctx, (struct call){nr, {0}});
}

/* ---- actions ---- */

START_TEST(test_allow_and_default_kill)
{
	scmp_filter_ctx ctx = compile(BASE "getppid: 1\ngetpid: allow\n");

	ck_assert_int_eq(call0(ctx, SYS_getppid), 0);
	ck_assert_int_eq(call0(ctx, SYS_getpid), 0);
	ck_assert_int_eq(call0(ctx, SYS_getuid), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_return_errno)
{
	scmp_filter_ctx ctx = compile(BASE "getuid: return 1\ngetgid: return ENOENT\n"
					   "geteuid: return 0x0d\n");

	ck_assert_int_eq(call0(ctx, SYS_getuid), EPERM);
	ck_assert_int_eq(call0(ctx, SYS_getgid), ENOENT);
	ck_assert_int_eq(call0(ctx, SYS_geteuid), EACCES);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_kill_follows_default)
{
	const char *text = BASE "getuid: kill\n";
	scmp_filter_ctx kill = compile_def(text, POLICY_DEFAULT_KILL);
	scmp_filter_ctx log = compile_def(text, POLICY_DEFAULT_LOG);

	ck_assert_int_eq(call0(kill, SYS_getuid), KILLED);
	/* --seccomp-log-failures: what would have been killed runs (and is logged). */
	ck_assert_int_eq(call0(log, SYS_getuid), 0);
	ck_assert_int_eq(call0(log, SYS_getgid), 0);
	seccomp_release(kill);
	seccomp_release(log);
}
END_TEST

START_TEST(test_explicit_actions)
{
	scmp_filter_ctx ctx =
		compile_def(BASE "getuid: kill-process\ngetgid: log\n", POLICY_DEFAULT_LOG);

	ck_assert_int_eq(call0(ctx, SYS_getuid), KILLED);
	ck_assert_int_eq(call0(ctx, SYS_getgid), 0);
	seccomp_release(ctx);
}
END_TEST

/* A bare exit_group: _exit() under the sanitizers makes syscalls the filter does not allow. */
static void trap_handler(int sig)
{
	syscall(SYS_exit_group, 77); // NOLINT(bugprone-signal-handler): a raw syscall is safe
}

/* With a SIGSYS handler, a trapped syscall reaches the handler; a killed one does not. */
static int run_with_handler(scmp_filter_ctx ctx, long nr)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSYS, trap_handler);
		if (seccomp_load(ctx) != 0)
			_exit(LOAD_ERR);
		syscall(nr);
		syscall(SYS_exit_group, 0);
	}
	return wait_outcome(pid);
}

START_TEST(test_trap)
{
	scmp_filter_ctx def_trap = compile_def(BASE, POLICY_DEFAULT_TRAP);
	scmp_filter_ctx rule_trap = compile(BASE "getgid: trap\n");

	ck_assert_int_eq(run_with_handler(def_trap, SYS_getuid), 77);
	ck_assert_int_eq(run_with_handler(rule_trap, SYS_getgid), 77);
	ck_assert_int_eq(run_with_handler(rule_trap, SYS_getuid), KILLED);
	seccomp_release(def_trap);
	seccomp_release(rule_trap);
}
END_TEST

/* ---- argument filters ---- */

START_TEST(test_arg_equal)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 == 5\n");

	ck_assert_int_eq(getpid_args(ctx, 5, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 6, 0, 0), KILLED);
	/* Arguments are compared on all 64 bits. */
	ck_assert_int_eq(getpid_args(ctx, 0x100000005ULL, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_arg_ordering_operators)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 != 7 && arg1 < 10 && arg2 >= 0x100000000\n"
					   "getppid: arg3 <= 3 && arg4 > 0xfffffffe\n");

	ck_assert_int_eq(getpid_args(ctx, 0, 9, 0x100000000ULL), 0);
	ck_assert_int_eq(getpid_args(ctx, 7, 9, 0x100000000ULL), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 0, 10, 0x100000000ULL), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 0, 9, 0xffffffffULL), KILLED);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_getppid, {0, 0, 0, 3, 0xffffffff}}), 0);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_getppid, {0, 0, 0, 4, 0xffffffff}}),
			 KILLED);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_getppid, {0, 0, 0, 3, 0xfffffffe}}),
			 KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_arg_bits_set)
{
	/* `arg & M`: at least one bit of M set, as in `clone: arg0 & CLONE_THREAD`. */
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 & 0x6400\n");

	ck_assert_int_eq(getpid_args(ctx, 0x400, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0x2001, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0x6400, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0x1bff, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_arg_in)
{
	scmp_filter_ctx ctx =
		compile(BASE "getpid: arg1 in SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK\n");

	ck_assert_int_eq(getpid_args(ctx, 0, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0, SOCK_DGRAM, 0), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 0, 1ULL << 40, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

static int mmap_prot(scmp_filter_ctx ctx, uint64_t prot)
{
	return run_call(
		ctx, (struct call){SYS_mmap,
				   {0, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0}});
}

START_TEST(test_mmap_without_exec)
{
	scmp_filter_ctx ctx = compile(BASE "mmap: arg2 in ~PROT_EXEC\n");

	ck_assert_int_eq(mmap_prot(ctx, PROT_READ | PROT_WRITE), 0);
	ck_assert_int_eq(mmap_prot(ctx, PROT_NONE), 0);
	ck_assert_int_eq(mmap_prot(ctx, PROT_READ | PROT_EXEC), KILLED);
	ck_assert_int_eq(mmap_prot(ctx, PROT_READ | PROT_WRITE | PROT_EXEC), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_disjunction_and_conjunction)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 == 1 && arg1 == 2 || arg2 == 3\n");

	ck_assert_int_eq(getpid_args(ctx, 1, 2, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 9, 9, 3), 0);
	ck_assert_int_eq(getpid_args(ctx, 1, 9, 0), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 9, 2, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_same_argument_twice)
{
	/* libseccomp compares an argument once per rule; a range must still work. */
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 >= 10 && arg0 <= 20 && arg0 != 15\n");

	ck_assert_int_eq(getpid_args(ctx, 10, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 14, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 20, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 9, 0, 0), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 15, 0, 0), KILLED);
	ck_assert_int_eq(getpid_args(ctx, 21, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_fallback_errno)
{
	scmp_filter_ctx ctx =
		compile(BASE "getpid: arg0 == 1 || arg0 == 2 || arg0 == 100; return EPERM\n");

	ck_assert_int_eq(getpid_args(ctx, 1, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 2, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 100, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 0, 0, 0), EPERM);
	ck_assert_int_eq(getpid_args(ctx, 3, 0, 0), EPERM);
	ck_assert_int_eq(getpid_args(ctx, 99, 0, 0), EPERM);
	ck_assert_int_eq(getpid_args(ctx, UINT64_MAX, 0, 0), EPERM);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_values)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 == 0x10 || arg0 == 010 || arg0 == -1 || "
					   "arg0 == (PROT_READ|PROT_WRITE) || arg0 == ~0xff\n");

	ck_assert_int_eq(getpid_args(ctx, 16, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 8, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, UINT64_MAX, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 3, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, ~0xffULL, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 10, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

/* ---- several statements for one syscall ---- */

START_TEST(test_filters_merge)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 == 1\ngetpid: arg0 == 2\n");

	ck_assert_int_eq(getpid_args(ctx, 1, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 2, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 3, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_unconditional_after_filter)
{
	scmp_filter_ctx ctx = compile(BASE "getpid: arg0 == 1\ngetpid: return EPERM\n");

	ck_assert_int_eq(getpid_args(ctx, 1, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 2, 0, 0), EPERM);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_duplicate_errors)
{
	expect_error(
		BASE "getpid: 1\n\ngetpid: 1\n",
		"t.policy:5: syscall 'getpid' already has an unconditional rule at t.policy:3");
	expect_error(
		BASE "getpid: return EPERM\ngetpid: arg0 == 1\n",
		"t.policy:4: syscall 'getpid' already has an unconditional rule at t.policy:3");
	expect_error(BASE "getpid: arg0 == 1; return EPERM\ngetpid: arg0 == 2; return EBADF\n",
		     "t.policy:4: syscall 'getpid' already has a different fallback action at "
		     "t.policy:3");
}
END_TEST

/* ---- file structure ---- */

START_TEST(test_comments_blank_lines_continuations)
{
	scmp_filter_ctx ctx = compile("# leading comment\n\n   \t\n" BASE
				      "  getppid:   1   # trailing comment\r\n"
				      "getpid: arg0 == 1 || \\\n"
				      "        arg0 == 2 ||\\\n"
				      "\targ0 == 3\n"
				      "@frequency ./t.frequency\n");

	ck_assert_int_eq(call0(ctx, SYS_getppid), 0);
	ck_assert_int_eq(getpid_args(ctx, 3, 0, 0), 0);
	ck_assert_int_eq(getpid_args(ctx, 4, 0, 0), KILLED);
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_include_nested)
{
	const struct policy_text files[] = {
		{"top.policy", "@include ./mid.policy\ngetppid: 1\n"},
		/* crosvm's policies include by installed absolute path */
		{"mid.policy", "@include /usr/share/policy/crosvm/base.policy\ngetuid: return 3\n"},
		{"base.policy", BASE},
		{NULL, NULL},
	};
	scmp_filter_ctx ctx;
	char err[256];

	ck_assert_int_eq(
		compile_files(files, "top.policy", POLICY_DEFAULT_KILL, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(call0(ctx, SYS_getppid), 0);
	ck_assert_int_eq(call0(ctx, SYS_getuid), ESRCH);
	ck_assert_int_eq(call0(ctx, SYS_getgid), KILLED);
	seccomp_release(ctx);
}
END_TEST

/* A resolver that records the names it is asked for. */
struct recording {
	const struct policy_text *files;
	char names[4][64];
	int n;
};

static int record_resolve(void *ctx, const char *name, char **text)
{
	struct recording *r = ctx;

	if (r->n < 4)
		snprintf(r->names[r->n++], sizeof(r->names[0]), "%s", name);
	for (const struct policy_text *f = r->files; f->name; f++) {
		if (strcmp(f->name, name) == 0) {
			*text = strdup(f->text);
			return 0;
		}
	}
	return -ENOENT;
}

START_TEST(test_include_relative_to_including_file)
{
	const struct policy_text files[] = {
		{"dir/top.policy", "@include ./sub/a.policy\n"},
		{"dir/sub/a.policy", "@include b.policy\n"},
		{"dir/sub/b.policy", BASE},
		{NULL, NULL},
	};
	struct recording rec = {.files = files};
	struct policy_opts o = {.resolve = record_resolve, .resolve_ctx = &rec};
	scmp_filter_ctx ctx = NULL;
	char err[256];

	ck_assert_int_eq(policy_compile("dir/top.policy", &o, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(rec.n, 3);
	ck_assert_str_eq(rec.names[1], "dir/sub/a.policy");
	ck_assert_str_eq(rec.names[2], "dir/sub/b.policy");
	seccomp_release(ctx);
}
END_TEST

START_TEST(test_include_errors)
{
	const struct policy_text cycle[] = {
		{"a.policy", BASE "@include ./b.policy\n"},
		{"b.policy", "\n@include ./a.policy\n"},
		{NULL, NULL},
	};
	const struct policy_text missing[] = {
		{"a.policy", BASE "@include ./nope.policy\n"},
		{NULL, NULL},
	};
	scmp_filter_ctx ctx;
	char err[256];

	ck_assert_int_eq(
		compile_files(cycle, "a.policy", POLICY_DEFAULT_KILL, &ctx, err, sizeof(err)),
		-EINVAL);
	ck_assert_str_eq(err, "b.policy:2: @include cycle: 'a.policy' includes itself");
	ck_assert_int_eq(
		compile_files(missing, "a.policy", POLICY_DEFAULT_KILL, &ctx, err, sizeof(err)),
		-ENOENT);
	ck_assert_str_eq(err, "a.policy:3: cannot read included policy 'nope.policy': No such "
			      "file or directory");
	ck_assert_int_eq(
		compile_files(missing, "other.policy", POLICY_DEFAULT_KILL, &ctx, err, sizeof(err)),
		-ENOENT);
	ck_assert_str_eq(err, "other.policy: cannot read the policy: No such file or directory");
	ck_assert_ptr_null(ctx);
}
END_TEST

/* A chain f0 -> f1 -> ... -> f<levels>, every file including the next. */
static int compile_chain(unsigned levels, char *err, size_t len)
{
	struct policy_text files[12] = {{NULL, NULL}};
	char names[12][16], texts[12][64];
	scmp_filter_ctx ctx;
	int rc;

	for (unsigned i = 0; i <= levels; i++) {
		snprintf(names[i], sizeof(names[i]), "f%u.policy", i);
		if (i < levels)
			snprintf(texts[i], sizeof(texts[i]), "@include ./f%u.policy\n", i + 1);
		else
			snprintf(texts[i], sizeof(texts[i]), BASE);
		files[i] = (struct policy_text){names[i], texts[i]};
	}
	rc = compile_files(files, "f0.policy", POLICY_DEFAULT_KILL, &ctx, err, len);
	if (!rc)
		seccomp_release(ctx);
	return rc;
}

START_TEST(test_include_depth)
{
	char err[256];

	ck_assert_int_eq(compile_chain(POLICY_MAX_INCLUDE_DEPTH, err, sizeof(err)), 0);
	ck_assert_int_eq(compile_chain(POLICY_MAX_INCLUDE_DEPTH + 1, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "f8.policy:1: @include nested more than 8 levels deep");
}
END_TEST

/* ---- malformed policies ---- */

START_TEST(test_malformed)
{
	expect_error(BASE "frobnicate: 1\n", "t.policy:3: unknown syscall 'frobnicate'");
	expect_error(BASE "socketcall: 1\n",
		     "t.policy:3: syscall 'socketcall' does not exist on x86_64");
	expect_error(BASE "getpid: arg0 is 1\n", "t.policy:3: invalid operator 'is'");
	expect_error(BASE "getpid: arg0 =! 1\n", "t.policy:3: unexpected character '='");
	expect_error(BASE "getpid: arg0 == 0x\n", "t.policy:3: invalid number '0x'");
	expect_error(BASE "getpid: arg0 == 12ab\n", "t.policy:3: invalid number '12ab'");
	expect_error(BASE "getpid: arg0 == 09\n", "t.policy:3: invalid number '09'");
	expect_error(BASE "getpid: arg0 == 18446744073709551616\n",
		     "t.policy:3: number '18446744073709551616' out of range");
	expect_error(BASE "getpid: arg0 == O_NOTHING\n",
		     "t.policy:3: unknown constant 'O_NOTHING'");
	expect_error(BASE "getpid: arg6 == 1\n",
		     "t.policy:3: argument 'arg6' out of range (arg0 to arg5)");
	expect_error(BASE "getpid:\n", "t.policy:3: missing action or filter after 'getpid:'");
	expect_error(BASE "getpid:   # nothing\n",
		     "t.policy:3: missing action or filter after 'getpid:'");
	expect_error(BASE "getpid: 1 2\n",
		     "t.policy:3: unexpected '2' after the rule for 'getpid'");
	expect_error(BASE "getpid: arg0 == 1 arg1\n",
		     "t.policy:3: unexpected 'arg1' after the rule for 'getpid'");
	expect_error(BASE "getpid 1\n", "t.policy:3: expected ':' after 'getpid', found '1'");
	expect_error(BASE "getpid: arg0 == 1 ||\n",
		     "t.policy:3: expected an argument (arg0 to arg5), found end of line");
	expect_error(BASE "getpid: arg0 ==\n", "t.policy:3: missing value after the operator");
	expect_error(BASE "getpid: arg0 == 1;\n", "t.policy:3: missing action");
	expect_error(BASE "getpid: return\n", "t.policy:3: missing errno after 'return'");
	expect_error(BASE "getpid: return 4096\n",
		     "t.policy:3: errno 4096 out of range (0 to 4095)");
	expect_error(BASE "getpid: 2\n",
		     "t.policy:3: invalid action '2' (expected 1, allow, return ERRNO, kill, "
		     "kill-process, kill-thread, trap or log)");
	expect_error(BASE "getpid: trace\n", "t.policy:3: action 'trace' is not supported");
	expect_error(BASE "getpid: arg0 == (1\n", "t.policy:3: expected ')', found end of line");
	expect_error(BASE "@inclde ./x.policy\n", "t.policy:3: unknown directive '@inclde'");
	expect_error(BASE "@include\n", "t.policy:3: @include needs a file name");
	expect_error(BASE "getpid: arg0 == 1 || \\\n arg0 == 2 || \\\n",
		     "t.policy:3: '\\' continues the last line past the end of the file");
	/* The line of a continued statement is the line it starts on. */
	expect_error(BASE "\ngetpid: arg0 == 1 || \\\n  arg0 === 2\n",
		     "t.policy:4: unexpected character '='");
}
END_TEST

START_TEST(test_hostile_inputs)
{
	char err[256], *deep, *big;
	size_t n = 200, len;

	/* Nested parentheses must not exhaust the stack. */
	deep = calloc(1, n + 64);
	ck_assert_ptr_nonnull(deep);
	len = (size_t)snprintf(deep, 64, BASE "getpid: arg0 == ");
	memset(deep + len, '(', n);
	memcpy(deep + len + n, "1\n", 3);
	ck_assert_int_eq(compile_fail(deep, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "t.policy:3: constant expression nested too deeply");
	free(deep);

	big = malloc(POLICY_MAX_FILE_SIZE + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, '\n', POLICY_MAX_FILE_SIZE + 1);
	big[POLICY_MAX_FILE_SIZE + 1] = '\0';
	ck_assert_int_eq(compile_fail(big, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "t.policy: larger than 1048576 bytes");
	free(big);

	/* Bytes that are not text are reported, not misread. */
	ck_assert_int_eq(compile_fail(BASE "get\x01pid: 1\n", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "t.policy:3: unexpected character 0x01");

	/* The error buffer may be tiny or absent. */
	{
		const struct policy_text files[] = {{"t.policy", "nope: 1\n"}, {NULL, NULL}};
		scmp_filter_ctx ctx;
		char tiny[4];

		ck_assert_int_eq(compile_files(files, "t.policy", POLICY_DEFAULT_KILL, &ctx, tiny,
					       sizeof(tiny)),
				 -EINVAL);
		ck_assert_str_eq(tiny, "t.p");
		ck_assert_int_eq(
			compile_files(files, "t.policy", POLICY_DEFAULT_KILL, &ctx, NULL, 0),
			-EINVAL);
	}
}
END_TEST

START_TEST(test_too_complex)
{
	char err[512], *text;
	size_t len = 0;

	/* Ranges on several arguments under a fallback: every range becomes aligned blocks. */
	text = malloc(4096);
	ck_assert_ptr_nonnull(text);
	len += (size_t)sprintf(text, BASE "getpid: ");
	for (int i = 0; i < 6; i++)
		len += (size_t)sprintf(text + len, "%sarg%d < %d", i ? " && " : "", i, 1000 + i);
	snprintf(text + len, 4096 - len, "; return EPERM\n");
	ck_assert_int_eq(compile_fail(text, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "t.policy:3: the filter for syscall 'getpid' is too complex to "
			      "express with libseccomp");
	free(text);
}
END_TEST

/* A policy in the style of crosvm's device policies compiles and behaves. */
START_TEST(test_crosvm_style_policy)
{
	scmp_filter_ctx ctx = compile(
		BASE "@frequency ./common_device.frequency\n"
		     "clone: arg0 & CLONE_THREAD\nclose: 1\nfutex: 1\nread: 1\nwrite: 1\n"
		     "madvise: arg2 == MADV_DONTNEED || arg2 == MADV_DONTDUMP || "
		     "arg2 == MADV_REMOVE || arg2 == MADV_MERGEABLE || arg2 == MADV_FREE\n"
		     "mmap: arg2 in ~PROT_EXEC\nmprotect: arg2 in ~PROT_EXEC\n"
		     "prctl: arg0 == PR_SET_VMA\ntgkill: arg2 == SIGABRT\n"
		     "ioctl: arg1 == FIONBIO || arg1 == TCGETS || arg1 == TCSETS\n"
		     "ioctl: arg1 == 0xc018aa3f || arg1 == USERFAULTFD_IOC_NEW\n"
		     "socket: arg0 == AF_UNIX && arg1 in SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK && "
		     "arg2 == 0\n"
		     "fcntl: arg1 == F_DUPFD_CLOEXEC || arg1 == F_GETFD || arg1 == F_SETFD || \\\n"
		     "       arg1 == F_GETFL || arg1 == F_SETFL || arg1 == F_ADD_SEALS\n"
		     "prctl: arg0 == PR_SET_NAME || arg0 == PR_SET_PDEATHSIG\n"
		     "open: return ENOENT\nopenat: return ENOENT\n"
		     "umount2: 1 # trailing comment\n");
	int fds[2];

	ck_assert_int_eq(
		run_call(ctx, (struct call){SYS_openat,
					    {(uint64_t)AT_FDCWD, (uint64_t)(uintptr_t) "/", 0}}),
		ENOENT);
	ck_assert_int_eq(
		run_call(ctx, (struct call){SYS_prctl, {PR_SET_NAME, (uint64_t)(uintptr_t) "x"}}),
		0);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_prctl, {PR_SET_DUMPABLE, 1}}), KILLED);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_fcntl, {(uint64_t)fds[0], F_GETFD}}), 0);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_fcntl, {(uint64_t)fds[0], F_GETLK}}),
			 KILLED);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_socket, {AF_UNIX, SOCK_STREAM, 0}}), 0);
	ck_assert_int_eq(run_call(ctx, (struct call){SYS_socket, {AF_INET, SOCK_STREAM, 0}}),
			 KILLED);
	close(fds[0]);
	close(fds[1]);
	seccomp_release(ctx);
}
END_TEST

/* ---- emission checked against a direct evaluation of random filters ---- */

struct model_atom {
	int arg, op; /* op indexes model_ops */
	uint64_t val;
};

static const char *const model_ops[] = {"==", "!=", "<", "<=", ">", ">=", "&", "in"};

static bool model_eval_atom(const struct model_atom *a, const uint64_t *args)
{
	uint64_t x = args[a->arg], v = a->val;

	switch (a->op) {
	case 0:
		return x == v;
	case 1:
		return x != v;
	case 2:
		return x < v;
	case 3:
		return x <= v;
	case 4:
		return x > v;
	case 5:
		return x >= v;
	case 6:
		return (x & v) != 0;
	default:
		return (x & ~v) == 0;
	}
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static const uint64_t model_values[] = {
	0,
	1,
	2,
	3,
	5,
	8,
	0xff,
	0x100,
	0x7fffffff,
	0x80000000,
	0xffffffff,
	0x100000000,
	0x8000000000000000ULL,
	0xfffffffffffffffeULL,
	UINT64_MAX,
	0x1f0,
	0x60,
};

#define MODEL_CLAUSES 3
#define MODEL_ATOMS   3
#define MODEL_VECTORS 400

struct model {
	int nclauses, natoms[MODEL_CLAUSES];
	struct model_atom atoms[MODEL_CLAUSES][MODEL_ATOMS];
	uint64_t vec[MODEL_VECTORS][3];
};

static bool model_eval(const struct model *m, const uint64_t *args)
{
	for (int c = 0; c < m->nclauses; c++) {
		bool all = true;

		for (int i = 0; i < m->natoms[c]; i++)
			all = all && model_eval_atom(&m->atoms[c][i], args);
		if (all)
			return true;
	}
	return false;
}

static uint64_t model_value(uint64_t *seed)
{
	uint64_t r = rng_next(seed);
	uint64_t v = model_values[r % ARRAY_SIZE(model_values)];

	switch ((r >> 8) % 4) {
	case 0:
		return v + 1;
	case 1:
		return v - 1;
	default:
		return v;
	}
}

static void model_make(struct model *m, uint64_t *seed, char *text, size_t len)
{
	/*
	 * mmap and munmap: under ASan, what libseccomp frees once the filter is loaded may make
	 * the allocator map memory in the child (seen: 1 run in 3 killed on mmap).
	 */
	size_t n = (size_t)snprintf(text, len, BASE "mmap: 1\nmunmap: 1\nwrite: 1\ngetpid: ");

	m->nclauses = 1 + (int)(rng_next(seed) % MODEL_CLAUSES);
	for (int c = 0; c < m->nclauses; c++) {
		m->natoms[c] = 1 + (int)(rng_next(seed) % MODEL_ATOMS);
		for (int i = 0; i < m->natoms[c]; i++) {
			struct model_atom *a = &m->atoms[c][i];

			/* Few arguments, so several comparisons often share one. */
			a->arg = (int)(rng_next(seed) % 3);
			a->op = (int)(rng_next(seed) % ARRAY_SIZE(model_ops));
			a->val = model_value(seed);
			n += (size_t)snprintf(text + n, len - n, "%s%sarg%d %s %#llx",
					      c && !i ? " || " : "", i ? " && " : "", a->arg,
					      model_ops[a->op], (unsigned long long)a->val);
		}
	}
	snprintf(text + n, len - n, "; return EPERM\n");
	for (int v = 0; v < MODEL_VECTORS; v++) {
		for (int k = 0; k < 3; k++) {
			/* Mostly the values the filter mentions and their neighbours. */
			if (rng_next(seed) % 4 == 0) {
				m->vec[v][k] = rng_next(seed);
			} else {
				int c = (int)(rng_next(seed) % (uint64_t)m->nclauses);
				int i = (int)(rng_next(seed) % (uint64_t)m->natoms[c]);
				uint64_t base = m->atoms[c][i].val;

				m->vec[v][k] = base + (rng_next(seed) % 3) - 1;
			}
		}
	}
}

/* In the child: every vector, compared with the model; prints mismatches, exits with their count.
 */
static void model_child(scmp_filter_ctx ctx, const struct model *m)
{
	int bad = 0;

	if (seccomp_load(ctx) != 0)
		_exit(LOAD_ERR);
	for (int v = 0; v < MODEL_VECTORS; v++) {
		const uint64_t *a = m->vec[v];
		long r = syscall(SYS_getpid, a[0], a[1], a[2], 0, 0, 0);
		int got = r < 0 ? errno : 0, want = model_eval(m, a) ? 0 : EPERM;

		if (got != want && bad++ < 5) {
			char line[160];
			int n = snprintf(line, sizeof(line),
					 "args %#llx %#llx %#llx: got %d want %d\n",
					 (unsigned long long)a[0], (unsigned long long)a[1],
					 (unsigned long long)a[2], got, want);

			syscall(SYS_write, 2, line, (size_t)n);
		}
	}
	syscall(SYS_exit_group, bad > 100 ? 100 : bad);
}

/*
 * Random filters with a fallback, so that every argument vector either runs or fails with
 * EPERM, checked on 400 vectors each. Filters libseccomp cannot express in a bounded number of
 * rules are refused with an error; they must stay the exception.
 */
START_TEST(test_emission_matches_model)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	static struct model m;
	int compiled = 0, iters = 200;
	char text[1024], err[256];

	for (int iter = 0; iter < iters; iter++) {
		const struct policy_text one[] = {{"t.policy", text}, {NULL, NULL}};
		scmp_filter_ctx ctx;
		pid_t pid;
		int rc;

		model_make(&m, &seed, text, sizeof(text));
		rc = compile_files(one, "t.policy", POLICY_DEFAULT_KILL, &ctx, err, sizeof(err));
		if (rc) {
			ck_assert_msg(strstr(err, "too complex") || strstr(err, "instructions"),
				      "unexpected error %s for %s", err, text);
			continue;
		}
		compiled++;
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			model_child(ctx, &m);
		rc = wait_outcome(pid);
		ck_assert_msg(rc == 0, "filter disagrees with the model (outcome %d): %s", rc,
			      text);
		seccomp_release(ctx);
	}
	ck_assert_int_ge(compiled, iters / 2);
}
END_TEST

/* ---- parse/emit halves, resolvers, constants ---- */

START_TEST(test_parse_then_emit)
{
	const struct policy_text files[] = {
		{"t.policy", BASE "getpid: arg0 == 1\ngetpid: arg0 == 2\ngetppid: 1\n"},
		{NULL, NULL},
	};
	struct policy_opts o = table_opts(files, POLICY_DEFAULT_KILL);
	struct policy *pol = NULL;
	scmp_filter_ctx ctx = NULL;
	char err[256];

	ck_assert_int_eq(policy_parse("t.policy", &o, &pol, err, sizeof(err)), 0);
	ck_assert_uint_eq(policy_syscall_count(pol), 4);
	ck_assert_int_eq(policy_emit(pol, POLICY_DEFAULT_KILL, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(getpid_args(ctx, 2, 0, 0), 0);
	ck_assert_int_eq(call0(ctx, SYS_getuid), KILLED);
	seccomp_release(ctx);
	policy_free(pol);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_resolve_dir)
{
	char dir[] = "/tmp/crosvm-policy-XXXXXX", path[256], err[256], *text = NULL;
	struct policy_opts o = {.resolve = policy_resolve_dir, .resolve_ctx = dir};
	scmp_filter_ctx ctx = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "common.policy", BASE);
	write_file(dir, "dev.policy",
		   "@include /usr/share/policy/crosvm/common.policy\n"
		   "getppid: 1\n");
	ck_assert_int_eq(policy_compile("dev.policy", &o, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(call0(ctx, SYS_getppid), 0);
	seccomp_release(ctx);

	ck_assert_int_eq(policy_resolve_dir(dir, "missing.policy", &text), -ENOENT);
	ck_assert_int_eq(policy_resolve_dir(dir, "..", &text), -ENOENT);
	ck_assert_int_eq(policy_resolve_dir(dir, "x/", &text), -ENOENT);
	/* A FIFO is refused rather than waited on. */
	snprintf(path, sizeof(path), "%s/fifo.policy", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(policy_resolve_dir(dir, "fifo.policy", &text), -EINVAL);
	ck_assert_ptr_null(text);
	unlink(path);
	snprintf(path, sizeof(path), "%s/common.policy", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dev.policy", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_constants)
{
	const char *name, *other;
	uint64_t v, w;

	ck_assert_int_eq(policy_const_lookup("FIONBIO", 7, &v), 0);
	ck_assert_uint_eq(v, 0x5421);
	/* The name is a token inside a longer line: only its len bytes count. */
	ck_assert_int_eq(policy_const_lookup("PROT_EXEC|PROT_READ", 9, &v), 0);
	ck_assert_uint_eq(v, PROT_EXEC);
	ck_assert_int_eq(policy_const_lookup("AT_FDCWD", 8, &v), 0);
	ck_assert_uint_eq(v, (uint64_t)-100);
	ck_assert_int_eq(policy_const_lookup("O_LARGEFILE", 11, &v), 0);
	ck_assert_uint_eq(v, 0x8000);
	ck_assert_int_eq(policy_const_lookup("ENOENT", 6, &v), 0);
	ck_assert_uint_eq(v, ENOENT);
	ck_assert_int_eq(policy_const_lookup("NOT_A_CONSTANT", 14, &v), -ENOENT);
	ck_assert_int_eq(policy_const_lookup("FIONBI", 6, &v), -ENOENT);
	/* Every name is unique, so a lookup cannot depend on table order. */
	for (size_t i = 0; policy_const_at(i, &name, &v) == 0; i++) {
		for (size_t j = i + 1; policy_const_at(j, &other, &w) == 0; j++)
			ck_assert_msg(strcmp(name, other) != 0, "duplicate constant %s", name);
	}
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, test_allow_and_default_kill);
	tcase_add_test(tc, test_return_errno);
	tcase_add_test(tc, test_kill_follows_default);
	tcase_add_test(tc, test_explicit_actions);
	tcase_add_test(tc, test_trap);
	tcase_add_test(tc, test_arg_equal);
	tcase_add_test(tc, test_arg_ordering_operators);
	tcase_add_test(tc, test_arg_bits_set);
	tcase_add_test(tc, test_arg_in);
	tcase_add_test(tc, test_mmap_without_exec);
	tcase_add_test(tc, test_disjunction_and_conjunction);
	tcase_add_test(tc, test_same_argument_twice);
	tcase_add_test(tc, test_fallback_errno);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_filters_merge);
	tcase_add_test(tc, test_unconditional_after_filter);
	tcase_add_test(tc, test_duplicate_errors);
	tcase_add_test(tc, test_comments_blank_lines_continuations);
	tcase_add_test(tc, test_include_nested);
	tcase_add_test(tc, test_include_relative_to_including_file);
	tcase_add_test(tc, test_include_errors);
	tcase_add_test(tc, test_include_depth);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_hostile_inputs);
	tcase_add_test(tc, test_too_complex);
	tcase_add_test(tc, test_crosvm_style_policy);
	tcase_add_test(tc, test_emission_matches_model);
	tcase_add_test(tc, test_parse_then_emit);
	tcase_add_test(tc, test_resolve_dir);
	tcase_add_test(tc, test_constants);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(policy_suite());
}
