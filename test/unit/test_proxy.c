/*
 * The device proxy (sandbox/proxy.c) between a parent and a real child process, without the
 * jail (the sandbox's own integration tests cover that): the proxy is a device like any, so
 * guest accesses, MSI-X state and commands reach the child's device through device_*(); the
 * child's device asks the VM for things through the same vm_events handle as in the main
 * process; the child's death ends the VM as a crash; stop and destroy end and reap it.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"
#include "sandbox/proxy.h"
#include "test/unit/testutil.h"

/* ---- the device, as the child runs it ---- */

#define REG_MSIX 7 /* reading this region returns the MSI-X state last set */

struct fake {
	struct device dev;
	uint64_t regs[8];
	bool msix;
	struct vm_events *ev; /* the VM's handle, as the child sees it */
	bool *destroyed;      /* in the parent: its copy was destroyed */
};

static int fake_io(void *opaque, unsigned region, uint64_t off, void *data, uint32_t len,
		   bool is_write)
{
	struct fake *f = opaque;
	uint64_t v;

	if (region >= ARRAY_SIZE(f->regs) || off || len > 8)
		return -EINVAL;
	if (is_write) {
		v = 0;
		memcpy(&v, data, len);
		f->regs[region] = v;
		return 0;
	}
	v = region == REG_MSIX ? f->msix : f->regs[region];
	memcpy(data, &v, len);
	return 0;
}

static void fake_msix(void *opaque, bool enabled)
{
	((struct fake *)opaque)->msix = enabled;
}

/*
 * BALLOON_TARGET answers with the argument doubled; POWER_BUTTON asks the VM for a reset;
 * SLEEP_BUTTON makes the process exit with the argument; GPE makes it hang; others are not
 * this device's.
 */
static int fake_command(void *opaque, const struct dev_cmd *cmd, dev_reply_fn done, void *ctx)
{
	struct fake *f = opaque;
	struct dev_reply r = {0};

	switch (cmd->op) {
	case DEV_CMD_BALLOON_TARGET:
		r.stats.actual_bytes = cmd->arg * 2;
		done(ctx, &r);
		return 0;
	case DEV_CMD_POWER_BUTTON:
		vm_events_exit(f->ev, VM_EXIT_RESET);
		dev_reply_ok(done, ctx);
		return 0;
	case DEV_CMD_SLEEP_BUTTON:
		_exit((int)cmd->arg);
	case DEV_CMD_GPE:
		for (;;)
			pause();
	default:
		return -EOPNOTSUPP;
	}
}

static void fake_destroy(void *opaque)
{
	struct fake *f = opaque;

	*f->destroyed = true;
}

static const struct dev_ops fake_ops = {
	.io = fake_io,
	.msix_state = fake_msix,
	.command = fake_command,
	.destroy = fake_destroy,
};

/* ---- the parent: a VM that records what it is asked ---- */

struct env {
	struct fake f;
	struct vm_events ev;
	enum vm_exit_reason exit;
	unsigned exits;
	atomic_bool stopping;
	bool destroyed;
	struct logger lg;
	struct event_base *eb;
	pid_t pid;
	int ctl_fd; /* the child's control socket */
};

static void record_exit(void *ctx, enum vm_exit_reason reason)
{
	struct env *e = ctx;

	e->exit = reason;
	e->exits++;
}

static int ready(void *ctx)
{
	return 0;
}

static void env_create(struct env *e)
{
	int io[2], ctl[2];

	memset(e, 0, sizeof(*e));
	log_init(&e->lg);
	e->lg.level = LOG_LVL_OFF;
	e->ev = (struct vm_events){.request_exit = record_exit, .ctx = e};
	e->f = (struct fake){.ev = &e->ev, .destroyed = &e->destroyed};
	e->f.dev = (struct device){.name = "fake", .ops = &fake_ops, .priv = &e->f};
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, io), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl), 0);
	e->pid = fork();
	ck_assert_int_ge(e->pid, 0);
	if (e->pid == 0) {
		struct event_base *eb = event_base_new();

		close(io[0]);
		close(ctl[0]);
		/* e lives on this stack until _exit, as the handle's fd must. */
		e->ctl_fd = ctl[1];
		proxy_forward_requests(&e->ev, &e->ctl_fd);
		_exit(eb && proxy_serve(&e->f.dev, io[1], ctl[1], eb, ready, NULL) == 0 ? 0 : 1);
	}
	close(io[1]);
	close(ctl[1]);
	ck_assert_int_eq(proxy_attach(&e->f.dev, &(struct proxy_params){.pid = e->pid,
									.io_sock = io[0],
									.ctl_sock = ctl[0],
									.cancel = &e->stopping,
									.ev = &e->ev,
									.reap_grace_ms = 50,
									.log = &e->lg}),
			 0);
	/* The name and policy stay; the ops are the proxy's now. */
	ck_assert_str_eq(e->f.dev.name, "fake");
	ck_assert_ptr_ne(e->f.dev.ops, &fake_ops);
	e->eb = event_base_new();
	ck_assert_ptr_nonnull(e->eb);
	ck_assert_int_eq(device_start(&e->f.dev, e->eb), 0);
}

/* Ends the proxy and checks that its process is gone and the parent's copy destroyed. */
static void env_destroy(struct env *e)
{
	atomic_store(&e->stopping, true);
	device_stop(&e->f.dev);
	device_destroy(&e->f.dev);
	ck_assert(e->destroyed);
	ck_assert_int_eq(waitpid(e->pid, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
	event_base_free(e->eb);
}

static void loop_until(struct env *e, const unsigned *counter, unsigned want)
{
	while (*counter < want)
		ck_assert_int_ge(event_base_loop(e->eb, EVLOOP_ONCE), 0);
}

struct replies {
	unsigned n;
	struct dev_reply last;
};

static void on_reply(void *ctx, const struct dev_reply *r)
{
	struct replies *rs = ctx;

	rs->n++;
	rs->last = *r;
}

static void command(struct env *e, uint32_t op, uint64_t arg, struct replies *rs)
{
	struct dev_cmd cmd = {.op = op, .arg = arg};

	ck_assert_int_eq(device_command(&e->f.dev, &cmd, on_reply, rs), 0);
}

START_TEST(io_and_msix_reach_the_child)
{
	struct env e;
	uint64_t v = 0x1122334455667788ULL;
	uint32_t w = 0;

	env_create(&e);
	ck_assert_int_eq(device_io(&e.f.dev, 2, 0, &v, 8, true), 0);
	v = 0;
	ck_assert_int_eq(device_io(&e.f.dev, 2, 0, &v, 8, false), 0);
	ck_assert_uint_eq(v, 0x1122334455667788ULL);
	/* The child's device says no: so does the proxy. */
	ck_assert_int_eq(device_io(&e.f.dev, 2, 4, &w, 4, false), -EINVAL);
	ck_assert_int_eq(device_io(&e.f.dev, 2, 0, &v, 16, false), -EINVAL);
	device_msix_state(&e.f.dev, true);
	ck_assert_int_eq(device_io(&e.f.dev, REG_MSIX, 0, &w, 4, false), 0);
	ck_assert_uint_eq(w, 1);
	device_msix_state(&e.f.dev, false);
	ck_assert_int_eq(device_io(&e.f.dev, REG_MSIX, 0, &w, 4, false), 0);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(e.exits, 0);
	env_destroy(&e);
}
END_TEST

START_TEST(commands_and_requests)
{
	struct replies rs = {0};
	struct env e;

	env_create(&e);
	command(&e, DEV_CMD_BALLOON_TARGET, 21, &rs);
	loop_until(&e, &rs.n, 1);
	ck_assert_int_eq(rs.last.err, 0);
	ck_assert_uint_eq(rs.last.stats.actual_bytes, 42);
	/* A command the device does not know is answered by its process, as a failure. */
	command(&e, DEV_CMD_DISK_RESIZE, 0, &rs);
	loop_until(&e, &rs.n, 2);
	ck_assert_int_eq(rs.last.err, -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(rs.last.msg, "does not support"));
	/* The device asks the VM for a reset from its process: the VM's handle gets it. */
	command(&e, DEV_CMD_POWER_BUTTON, 0, &rs);
	loop_until(&e, &rs.n, 3);
	loop_until(&e, &e.exits, 1);
	ck_assert_int_eq(e.exit, VM_EXIT_RESET);
	env_destroy(&e);
	ck_assert_uint_eq(e.exits, 1);
}
END_TEST

START_TEST(death_is_a_crash)
{
	struct replies rs = {0};
	struct env e;
	uint32_t v = 0;

	env_create(&e);
	command(&e, DEV_CMD_SLEEP_BUTTON, 3, &rs);
	loop_until(&e, &e.exits, 1);
	ck_assert_int_eq(e.exit, VM_EXIT_CRASH);
	/* What was pending fails; later accesses fail without waiting. */
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_int_lt(rs.last.err, 0);
	ck_assert_int_eq(device_io(&e.f.dev, 1, 0, &v, 4, false), -EPIPE);
	ck_assert_uint_eq(v, 0xffffffff);
	env_destroy(&e);
	ck_assert_uint_eq(e.exits, 1);
}
END_TEST

/* A process that does not stop when told is killed by destroy, and reaped. */
START_TEST(stuck_child_is_killed)
{
	struct replies rs = {0};
	struct env e;

	env_create(&e);
	command(&e, DEV_CMD_GPE, 0, &rs);
	env_destroy(&e);
	/* Its pending command got an answer all the same; teardown is no crash. */
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_int_lt(rs.last.err, 0);
	ck_assert_uint_eq(e.exits, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_add_test(tc, io_and_msix_reach_the_child);
	tcase_add_test(tc, commands_and_requests);
	tcase_add_test(tc, death_is_a_crash);
	tcase_add_test(tc, stuck_child_is_killed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(suite());
}
