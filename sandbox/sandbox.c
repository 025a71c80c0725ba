/*
 * One jailed child process per device. The child is made with a raw clone(2) (as minijail
 * does) so that it is PID 1 of a new PID namespace while its parent still sees and reaps it
 * directly; the VMM has no other thread at that point, so the copied process is consistent.
 * The child never returns into the VMM's code: it serves its device and leaves through
 * _exit(2) - it is the one place besides main() that ends a process, because it is that
 * process's main.
 */
#include "sandbox/sandbox.h"
#include "core/device.h"
#include "core/log.h"
#include "core/vm_event.h"
#include "sandbox/builtin_policies.h"
#include "sandbox/jail.h"
#include "sandbox/policy.h"
#include "sandbox/proxy.h"

#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>

/* The control socket's fixed number in a child, so the SIGSYS handler can reach it. */
#define CHILD_CTL_FD	 1000
#define CHILD_NOFILE	 1024
#define READY_TIMEOUT_MS 10000
#define REAP_GRACE_MS	 200

struct child_ctx {
	struct device *dev;
	const struct sandbox_opts *o;
	struct dev_jail jail; /* what the device asked for beyond the default jail */
	scmp_filter_ctx filter;
	int io_sock;
	int userns_pipe; /* read end: the parent has written our uid/gid maps when it closes */
	/*
	 * Write end, for a user namespace the child enters only once it is in its root (a
	 * privileged VMM, a device with its own maps): one byte says "map me now".
	 */
	int unshared_pipe;
	bool late_userns;
	int ctl_fd; /* CHILD_CTL_FD: where the device's requests of the VM go */
};

int sandbox_prepare(const struct sandbox_opts *o)
{
	const struct logger *lg = o->log;
	struct stat st;

	if (stat(o->pivot_root, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_err(lg, "--pivot-root %s is not a directory", o->pivot_root);
			return -ENOTDIR;
		}
		return 0;
	}
	if (errno != ENOENT || mkdir(o->pivot_root, 0755) < 0) {
		int e = errno;

		log_err(lg,
			"the sandbox needs the empty directory %s and it cannot be created: %s "
			"(create it, pass --pivot-root DIR, or use --disable-sandbox)",
			o->pivot_root, strerror(e));
		return -e;
	}
	log_info(lg, "created %s, the empty root directory of sandboxed devices", o->pivot_root);
	return 0;
}

int sandbox_drop_caps(void)
{
	return jail_drop_caps();
}

/*
 * Reports the syscall seccomp refused, then dies of SIGSYS as if there were no handler. A
 * device process is PID 1 of its namespace, which ignores signals it sends itself, so it
 * cannot simply re-raise SIGSYS. Instead it repeats the refused syscall with the very same
 * arguments: the filter refuses it again, and because SIGSYS is blocked inside this handler
 * the kernel forces the default action, which kills even a namespace's init.
 */
static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
	const ucontext_t *uc = ucv;
	const greg_t *r = uc->uc_mcontext.gregs;
	struct proxy_ctl m = {.kind = PROXY_CTL_SIGSYS, .u.sysno = si->si_syscall};

	(void)sig;
	if (write(CHILD_CTL_FD, &m, sizeof(m)) < 0)
		(void)0;
	syscall(si->si_syscall, r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8],
		r[REG_R9]);
	/* Not reached unless the filter changed its mind: leave anyway. */
	syscall(SYS_exit_group, 128 + SIGSYS);
}

static int policy_filter(const struct device *dev, const struct sandbox_opts *o,
			 const struct logger *lg, scmp_filter_ctx *filter)
{
	struct policy_opts po = {
		.def = o->log_failures ? POLICY_DEFAULT_LOG : POLICY_DEFAULT_TRAP,
		.resolve = o->policy_dir ? policy_resolve_dir : policy_resolve_table,
		.resolve_ctx = o->policy_dir ? (void *)o->policy_dir : (void *)builtin_policies,
	};
	char name[64], err[512];
	int ret;

	snprintf(name, sizeof(name), "%s.policy", dev->policy);
	ret = policy_compile(name, &po, filter, err, sizeof(err));
	if (ret < 0) {
		log_err(lg, "%s: cannot load seccomp policy %s%s%s: %s", dev->name, name,
			o->policy_dir ? " from " : "", o->policy_dir ? o->policy_dir : "", err);
		return ret;
	}
#ifdef CROSVM_SANITIZER_RUNTIME
	/*
	 * ASan/UBSan builds only: the sanitizer runtime itself needs an alternate signal
	 * stack, the CPU affinity, madvise on its shadow memory and the thread id in every
	 * thread it sees.
	 * Release builds never get these rules; the policies stay what the devices need.
	 */
	{
		static const int extra[] = {SCMP_SYS(sigaltstack), SCMP_SYS(sched_getaffinity),
					    SCMP_SYS(madvise), SCMP_SYS(gettid)};

		for (unsigned i = 0; i < ARRAY_SIZE(extra); i++) {
			int r = seccomp_rule_add(*filter, SCMP_ACT_ALLOW, extra[i], 0);

			if (r < 0 && r != -EEXIST)
				log_warn(lg, "%s: sanitizer allowance %d: %s", dev->name, extra[i],
					 strerror(-r));
		}
	}
#endif
	return 0;
}

static int child_ready(void *arg)
{
	struct child_ctx *c = arg;
	struct proxy_msg m = {.op = PROXY_READY};
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	int ret;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	ret = seccomp_load(c->filter);
	if (ret < 0)
		return ret;
	if (send(c->io_sock, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		return -errno;
#ifdef CROSVM_TEST_HOOKS
	if (c->o->violation_device && strcmp(c->o->violation_device, c->dev->name) == 0) {
		log_info(c->o->log, "%s: test hook: calling getppid(2), which no policy allows",
			 c->dev->name);
		syscall(SYS_getppid);
	}
#endif
	return 0;
}

/* Waits until the parent has mapped our ids (EOF on the pipe), then becomes their root. */
static int wait_for_maps(struct child_ctx *c)
{
	char byte;

	while (read(c->userns_pipe, &byte, 1) < 0 && errno == EINTR)
		;
	close_fd(&c->userns_pipe);
	return jail_become_ns_root();
}

/*
 * A user namespace of the device's own, entered once the process is in its root: a process
 * whose root is not its mount namespace's (a chroot) may not make one, and its mount
 * namespace then stays the VMM's to change, not the device's.
 */
static int late_userns(struct child_ctx *c)
{
	if (unshare(CLONE_NEWUSER) < 0)
		return -errno;
	if (write(c->unshared_pipe, "u", 1) != 1)
		return -EPIPE;
	close_fd(&c->unshared_pipe);
	return wait_for_maps(c);
}

/* Each step of the jail, in order; *step names the one that failed. */
static int child_setup(struct child_ctx *c, int ctl_sock, const char **step)
{
	const struct dev_jail *j = &c->jail;
	struct device *dev = c->dev;
	struct fd_list keep = {.nr = 0};
	int proc_fd = -1;
	int ret;

	*step = "keeping its descriptors";
	if (dup2(ctl_sock, CHILD_CTL_FD) < 0)
		return -errno;
	ret = fd_list_add(&keep, STDERR_FILENO);
	if (ret == 0)
		ret = fd_list_add(&keep, c->io_sock);
	if (ret == 0)
		ret = fd_list_add(&keep, CHILD_CTL_FD);
	if (ret == 0)
		ret = fd_list_add(&keep, c->userns_pipe);
	if (ret == 0)
		ret = fd_list_add(&keep, c->unshared_pipe);
	if (ret == 0)
		ret = device_fds(dev, &keep);
	if (ret == 0)
		ret = jail_close_fds(&keep);
	if (ret < 0)
		return ret;
	*step = "taking its ids";
	if (c->userns_pipe >= 0 && !c->late_userns) {
		ret = wait_for_maps(c);
		if (ret < 0)
			return ret;
	}
	*step = "mounting its own proc";
	if (j->want_proc) {
		ret = jail_private_proc(&proc_fd);
		if (ret < 0)
			return ret;
	}
	*step = "pivoting into its root";
	ret = jail_pivot_root(j->root ? j->root : c->o->pivot_root, c->o->pivot_root,
			      dev->jail_dir);
	if (ret == 0) {
		*step = "limiting its descriptors";
		ret = jail_limit_fds(j->nofile ? j->nofile : CHILD_NOFILE);
	}
	if (ret == 0 && c->late_userns) {
		*step = "making its user namespace";
		ret = late_userns(c);
	}
	if (ret == 0 && j->entered) {
		*step = "setting the device up in it";
		ret = j->entered(j->ctx, proc_fd);
		proc_fd = -1; /* the device's now */
	}
	close_fd(&proc_fd);
	if (ret == 0) {
		*step = "dropping capabilities";
		ret = jail_keep_caps(j->caps);
	}
	if (ret == 0) {
		*step = "setting no_new_privs";
		ret = jail_no_new_privs();
	}
	return ret;
}

static void child_main(struct child_ctx *c, int ctl_sock)
{
	const char *step = "";
	struct device *dev = c->dev;
	struct proxy_msg fail = {.op = PROXY_FAILED};
	struct event_base *eb = NULL;
	int ret;

	/* Die with the VMM, whatever way it goes. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	snprintf(c->o->log->tag, sizeof(c->o->log->tag), "crosvm %s", dev->name);
	c->o->log->to_syslog = false;
	/* The device's requests of the VM now travel to the parent, which makes them. */
	if (c->o->events)
		proxy_forward_requests(c->o->events, &c->ctl_fd);
	prctl(PR_SET_NAME, dev->name, 0, 0, 0);
	ret = child_setup(c, ctl_sock, &step);
	if (ret < 0) {
		log_err(c->o->log, "cannot enter the sandbox (%s): %s", step, strerror(-ret));
		goto fail;
	}
	eb = event_base_new();
	if (!eb) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = device_start(dev, eb);
	if (ret < 0) {
		log_err(c->o->log, "cannot start: %s", strerror(-ret));
		goto fail;
	}
	if (dev->sched_batch) {
		struct sched_param sp = {.sched_priority = 0};

		/* A lost optimisation, not a failure: the device works either way. */
		if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
			log_warn(c->o->log, "cannot switch to SCHED_BATCH: %s", strerror(errno));
	}
	ret = proxy_serve(dev, c->io_sock, CHILD_CTL_FD, eb, child_ready, c);
	if (ret < 0)
		log_err(c->o->log, "device process failed: %s", strerror(-ret));
	device_stop(dev);
	_exit(ret < 0 ? 1 : 0);
fail:
	fail.val = -ret;
	send(c->io_sock, &fail, sizeof(fail), MSG_NOSIGNAL);
	_exit(1);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write_full(fd, text, strlen(text));
	close(fd);
	return ret;
}

/*
 * Writes the child's user namespace maps: the device's, or by default its root mapped to our
 * own uid/gid (the unprivileged case).
 */
static int map_ids(pid_t pid, const struct dev_jail *j)
{
	char path[64], uid_map[64], gid_map[64];
	int ret;

	snprintf(uid_map, sizeof(uid_map), "0 %u 1\n", getuid());
	snprintf(gid_map, sizeof(gid_map), "0 %u 1\n", getgid());
	snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
	ret = write_file(path, "deny");
	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	ret = write_file(path, j->uid_map ? j->uid_map : uid_map);
	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
	return write_file(path, j->gid_map ? j->gid_map : gid_map);
}

/* Waits (bounded) for the child's byte saying it has made its user namespace. */
static int wait_unshared(const struct logger *lg, const char *name, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char byte;
	int r;

	do {
		r = poll(&pfd, 1, READY_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r > 0 && read(fd, &byte, 1) == 1)
		return 0;
	log_err(lg, "%s: the device process did not make its user namespace", name);
	return -EPIPE;
}

static int wait_ready(const struct logger *lg, struct device *dev, int io_sock)
{
	struct pollfd pfd = {.fd = io_sock, .events = POLLIN};
	struct proxy_msg m;
	int r;

	do {
		r = poll(&pfd, 1, READY_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		log_err(lg, "%s: the device process did not start in time", dev->name);
		return -ETIMEDOUT;
	}
	if (recv(io_sock, &m, sizeof(m), 0) != (ssize_t)sizeof(m)) {
		log_err(lg, "%s: the device process died while starting", dev->name);
		return -EPIPE;
	}
	if (m.op != PROXY_READY) {
		log_err(lg, "%s: the device process could not start: %s", dev->name,
			strerror(m.val));
		return m.val ? -m.val : -EIO;
	}
	return 0;
}

int sandbox_jail_device(struct device *dev, const struct sandbox_opts *o, pid_t *pid_out)
{
	int io[2] = {-1, -1}, ctl[2] = {-1, -1}, up[2] = {-1, -1}, down[2] = {-1, -1};
	struct child_ctx c = {
		.dev = dev, .o = o, .userns_pipe = -1, .unshared_pipe = -1, .ctl_fd = CHILD_CTL_FD};
	unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | SIGCHLD;
	const struct logger *lg = o->log;
	pid_t pid = -1;
	bool userns;
	int ret;

	/* An empty network namespace, unless the device's sockets must reach the host's. */
	if (!dev->host_network)
		flags |= CLONE_NEWNET;
	ret = device_jail(dev, &c.jail);
	if (ret < 0) {
		log_err(lg, "%s: cannot describe the device's sandbox: %s", dev->name,
			strerror(-ret));
		return ret;
	}
	/*
	 * Unprivileged, every namespace needs a user namespace first, made with them. Privileged,
	 * a device that asks for its own ids gets its user namespace once in its root.
	 */
	userns = geteuid() != 0;
	c.late_userns = !userns && (c.jail.uid_map || c.jail.gid_map);
	ret = policy_filter(dev, o, lg, &c.filter);
	if (ret < 0)
		return ret;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, io) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    ((userns || c.late_userns) && pipe2(up, O_CLOEXEC) < 0) ||
	    (c.late_userns && pipe2(down, O_CLOEXEC) < 0)) {
		ret = -errno;
		goto out;
	}
	if (userns)
		flags |= CLONE_NEWUSER;
	/* No other thread exists yet, so a raw clone copies a consistent process. */
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		ret = -errno;
		log_err(lg, "%s: cannot create the device process: %s", dev->name, strerror(-ret));
		goto out;
	}
	if (pid == 0) {
		c.io_sock = io[1];
		c.userns_pipe = up[0];
		c.unshared_pipe = down[1];
		child_main(&c, ctl[1]);
	}
	close_fd(&io[1]);
	close_fd(&ctl[1]);
	close_fd(&up[0]);
	close_fd(&down[1]);
	if (c.late_userns) {
		ret = wait_unshared(lg, dev->name, down[0]);
		if (ret < 0)
			goto out;
	}
	if (userns || c.late_userns) {
		ret = map_ids(pid, &c.jail);
		close_fd(&up[1]);
		if (ret < 0) {
			log_err(lg, "%s: cannot map ids into the user namespace: %s", dev->name,
				strerror(-ret));
			goto out;
		}
	}
	ret = wait_ready(lg, dev, io[0]);
	if (ret < 0)
		goto out;
	/* The device now runs over there: the main process drops what only its process uses. */
	device_forked(dev);
	ret = proxy_attach(dev, &(struct proxy_params){.pid = pid,
						       .io_sock = io[0],
						       .ctl_sock = ctl[0],
						       .cancel = o->stopping,
						       .ev = o->events,
						       .reap_grace_ms = REAP_GRACE_MS,
						       .log = lg});
	io[0] = ctl[0] = -1; /* taken over, also on failure */
	if (ret < 0) {
		log_err(lg, "%s: cannot watch the device process: %s", dev->name, strerror(-ret));
		goto out;
	}
	log_debug(lg, "%s: running in process %d", dev->name, pid);
	if (pid_out)
		*pid_out = pid;
	pid = -1;
out:
	/* A child that did not become a proxy's is not left behind. */
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	seccomp_release(c.filter);
	close_fd(&io[0]);
	close_fd(&io[1]);
	close_fd(&ctl[0]);
	close_fd(&ctl[1]);
	close_fd(&up[0]);
	close_fd(&up[1]);
	close_fd(&down[0]);
	close_fd(&down[1]);
	return ret;
}
