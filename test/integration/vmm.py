"""Runs the real crosvm binary on the test guests (stdlib only).

The tests use run_crosvm() for a VM that runs to its end and spawn_crosvm() for one they
interact with (serial console on stdin/stdout, control socket). Both add --no-syslog and
--extended-status so the VM's outcome is the exit status.
"""

import os
import re
import signal
import subprocess
import tempfile
import time

import guestlib

CROSVM = os.environ.get("CROSVM") or os.path.join(
    os.environ.get("BUILD_DIR", "build"), "crosvm")

STATUS_STOP = 0
STATUS_RESET = 32
STATUS_CRASH = 33
STATUS_PANIC = 34
STATUS_INVALID = 35

SANITIZER_MARKERS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                     "LeakSanitizer")


def guest(name, kind="elf"):
    return guestlib.guest_path(name, kind)


def command(kernel, *opts, sandbox=True, extended=True, global_opts=()):
    cmd = [CROSVM, "--no-syslog"]
    if extended:
        cmd.append("--extended-status")
    cmd += list(global_opts)
    cmd.append("run")
    if not sandbox:
        cmd.append("--disable-sandbox")
    cmd += [str(o) for o in opts]
    if kernel is not None:
        cmd.append(str(kernel))
    return cmd


class Run:
    """The outcome of one VM: status, guest output (stdout), log (stderr), parsed results."""

    def __init__(self, status, out, err):
        self.status = status
        self.out = out
        self.err = err
        self.results = guestlib.parse_results(out)

    def __repr__(self):
        return "Run(status=%r)\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.status, self.out[-4000:], self.err[-4000:])


def run_crosvm(kernel, *opts, sandbox=True, extended=True, timeout=60, input=None,
               global_opts=()):
    """Runs a VM to its end. Raises TimeoutError (after killing it) if it does not end."""
    cmd = command(kernel, *opts, sandbox=sandbox, extended=extended, global_opts=global_opts)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else
                            subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise TimeoutError("crosvm did not end within %ss: %s\n%s\n%s" % (
            timeout, " ".join(cmd), out.decode(errors="replace")[-3000:],
            err.decode(errors="replace")[-3000:]))
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def spawn_crosvm(kernel, *opts, sandbox=True, extended=True, global_opts=()):
    """Starts a VM whose COM1 is the returned Session's stdin/stdout."""
    return guestlib.Session(command(kernel, *opts, sandbox=sandbox, extended=extended,
                                    global_opts=global_opts))


def children(pid):
    """The pids of the direct children of pid."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_stat(path):
    """(comm, state) from a /proc/.../stat file; ("?", "?") when it cannot be read."""
    try:
        with open(path) as f:
            stat = f.read()
        return stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return "?", "?"


def threads_state(pid):
    """Each thread of pid and of its children: name, state, kernel wait channel, syscall.

    For a VM that does not end: whether its vCPU sleeps in KVM_RUN (the guest halted) or in
    the VMM (a lock, a device), which the guest's console alone cannot tell.
    """
    lines = []
    blocked = False
    for p in [pid] + children(pid):
        try:
            tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % p))
        except OSError:
            continue
        for tid in tids:
            base = "/proc/%d/task/%d/" % (p, tid)
            fields = []
            for name in ("comm", "wchan", "syscall"):
                try:
                    with open(base + name) as f:
                        text = f.read().strip()
                    # syscall: its number first ("running" when on a CPU).
                    fields.append(text.split(" ")[0] if name == "syscall" else text)
                except OSError:
                    fields.append("?")
            state = proc_stat(base + "stat")[1]
            lines.append("%d/%d %s %s wchan=%s syscall=%s" % (p, tid, fields[0], state,
                                                              fields[1], fields[2]))
            if fields[0].startswith("crosvm_vcpu") or state == "D":
                blocked = blocked or state == "D"
                try:
                    with open(base + "stack") as f:
                        lines.append("  " + f.read().strip().replace("\n", "\n  "))
                except OSError:
                    pass
    # The host kernel's timers that emulate a guest's local APIC timer (KVM's apic_timer_fn):
    # whether a halted vCPU has a wake-up pending, and when.
    try:
        with open("/proc/timer_list") as f:
            text = f.read()
        now = re.search(r"^now at (\d+) nsecs", text, re.M)
        lines.append("host now %s ns; apic timers: %s" % (
            now.group(1) if now else "?",
            "; ".join(re.findall(r"apic_timer_fn.*\n.*", text)) or "none"))
    except OSError:
        pass
    if blocked:
        lines.append(host_blocked_work())
    return "\n".join(lines)


def host_blocked_work():
    """For a VMM thread blocked in the kernel (state D): what the host kernel's workers are
    doing, whether its timer-wheel softirq still runs (sampled 1 s apart), and the busy
    workqueues (SysRq 't' ends with them; only in the nested test host, as root)."""
    lines = []
    for tid in sorted(int(t) for t in os.listdir("/proc") if t.isdigit()):
        comm, state = proc_stat("/proc/%d/stat" % tid)
        if state != "D" or not comm.startswith("kworker"):
            continue
        try:
            with open("/proc/%d/stack" % tid) as f:
                stack = f.read().strip().replace("\n", "\n  ")
            lines.append("host %d %s D\n  %s" % (tid, comm, stack))
        except OSError:
            continue

    def timer_state():
        with open("/proc/softirqs") as f:
            softirqs = " ".join(next((l for l in f if l.strip().startswith("TIMER:")),
                                     "").split())
        with open("/proc/timer_list") as f:
            jiffies = re.search(r"^jiffies: (\d+)", f.read(), re.M)
        return "%s jiffies %s" % (softirqs, jiffies.group(1) if jiffies else "?")
    try:
        first = timer_state()
        time.sleep(1)
        lines.append("host softirqs %s -> 1 s later %s" % (first, timer_state()))
    except OSError:
        pass
    if not os.environ.get("CROSVM_IN_TEST_HOST"):
        return "\n".join(lines)
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("t")
        log = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
        start = log.rfind("Showing busy workqueues")
        if start >= 0:
            lines.append(log[start:start + 4000].rstrip())
    except OSError:
        pass
    return "\n".join(lines)


def proc_status(pid):
    """/proc/<pid>/status as a dict."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def wait_for(predicate, timeout=10, interval=0.02):
    """Polls predicate() until it is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met within %ss" % timeout)
        time.sleep(interval)


def control(socket_path, *args, timeout=30):
    """Runs `crosvm <args> SOCKET`; returns (status, stdout, stderr)."""
    proc = subprocess.run([CROSVM, "--no-syslog"] + [str(a) for a in args] + [socket_path],
                          capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors="replace"), \
        proc.stderr.decode(errors="replace")


def no_sanitizer_report(testcase, text):
    for marker in SANITIZER_MARKERS:
        testcase.assertNotIn(marker, text)


class TempDir:
    """A temporary directory removed at the end (usable as a context manager)."""

    def __init__(self):
        self._td = tempfile.TemporaryDirectory(prefix="crosvm-test-")
        self.path = self._td.name

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._td.cleanup()


def kill_tree(session):
    """Kills a spawned VM and any device process it left (test cleanup)."""
    pid = session.proc.pid
    for child in children(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    session.close()


KVM_CHECK_EXTENSION = 0xae03  # _IO(KVMIO, 0x03)
KVM_CAP_TSC_DEADLINE_TIMER = 72


def kvm_has(cap, device="/dev/kvm"):
    """KVM_CHECK_EXTENSION on the host's KVM: True when cap is there."""
    import fcntl
    fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap) > 0
    finally:
        os.close(fd)


def host_cpu():
    """The first CPU of /proc/cpuinfo as a dict (vendor_id, model name, flags, ...)."""
    out = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out
