"""The nested KVM test host: a QEMU (TCG) virtual machine with a real /dev/kvm in which one
command runs, in this machine's root file system and working directory.

QEMU's TCG emulates AMD SVM with nested paging and Debian's cloud kernel loads kvm_amd on it,
so the test host's /dev/kvm is a real KVM (docs/platform.md). This machine's / is shared over
virtiofs; the host's init (a small busybox initramfs) loads the modules, mounts that root with
fresh proc, sys, dev, /tmp and /run, moves it over / in a mount namespace of the command's own
(as switch_root does: a plain chroot could not make user namespaces) and runs the command from
a script the caller wrote. The command's stdout and stderr come back on two virtio serial ports (files
here, copied to ours as they grow); its exit status comes back on the console with a nonce.
"""

import ctypes
import hashlib
import os
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import debkernel
from debkernel import Error

QEMU = "qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
# Modules the host loads, in this order of need (their dependencies come first by themselves).
HOST_MODULES = (
    "kvm-amd", "virtio_pci", "virtio_console", "virtiofs", "tun", "tap", "veth", "vhost_net",
    "vhost_vsock", "vsock_loopback",
)
RUN_PARENT = "/var/tmp"
DEFAULT_MEM_MIB = 4096
DEFAULT_SLOTS = 2
# The host's heartbeat comes every 5 s. None for this long while QEMU runs means the host's
# kernel has stopped: nested KVM on QEMU's emulated SVM has been seen to wedge the host for
# good (its timer softirq never ran again, docs/platform.md). That is the test host's failure,
# not the command's: the command runs once more in a fresh host.
FROZEN_S = int(os.environ.get("CROSVM_TESTVM_FROZEN_S", 300))
# A shorter stall that the host recovered from still breaks the command running through it
# (a VMM waited minutes in close() for an irqfd shutdown, a workqueue flush): a command that
# fails after a heartbeat gap this long also runs once more in a fresh host. Beats come every
# 5 s; gaps over 15 s are logged, to see how far a loaded host delays them.
STALL_S = int(os.environ.get("CROSVM_TESTVM_STALL_S", 45))
# A beat this late gets the host a harmless interrupt (see the loop in _run).
NUDGE_S = int(os.environ.get("CROSVM_TESTVM_NUDGE_S", 10))

# The test host's /init: everything after the module list is fixed text, so the initramfs
# cache key covers it. @MODULES@ is replaced by the load order.
HOST_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
nonce=$(arg testvm.nonce)
run=$(arg testvm.run)
report() { echo "testvm-status-$nonce: $1" >/dev/ttyS0; poweroff -f; }
# KVM takes the TSC's frequency when it loads. Under TCG the early calibration can be off by
# more than KVM's 250 ppm tolerance (the PIT calibration fails, HPET's fallback is rough, e.g.
# 2593.405 MHz for 2596.126), and the kernel refines it about a second later: a KVM loaded
# before that gives its guests a TSC rate it believes the CPU does not have, and their timers
# then fire up to minutes late (a nested guest halted in kvm_vcpu_block with its APIC timer
# pending, docs/platform.md). So KVM loads once the TSC clocksource is final (at most 10 s).
i=0
until dmesg | grep -q 'clocksource: tsc: mask' || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
for m in @MODULES@; do
	insmod "$m" || echo "testvm: insmod $m failed" >/dev/ttyS0
done
ip link set lo up
# The virtio serial ports by name (no udev here to make /dev/virtio-ports/).
port() {
	for p in /sys/class/virtio-ports/*; do
		[ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return; }
	done
}
mkdir -p /host
mount -t virtiofs hostroot /host || report 125
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
ln -sf pts/ptmx /host/dev/ptmx 2>/dev/null
mount -t tmpfs tmpfs /host/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
mkdir -p /host/run/lock /host/run/netns
# The command's root is /host moved over / in a mount namespace of its own (switch_root's way),
# not a chroot: a chrooted process may not make user namespaces, which sandboxed devices do.
enter() { unshare -m /bin/sh -c 'cd /host && mount --move . / && exec chroot . /bin/sh "$1"' sh "$1"; }
if [ -e "/host$run/interactive" ]; then
	stty -F /dev/ttyS1 sane
	enter "$run/cmd.sh" </dev/ttyS1 >/dev/ttyS1 2>&1
else
	out=$(port testvm.out)
	err=$(port testvm.err)
	# A heartbeat the caller watches: it stops when this kernel stops running its timers.
	# Each beat waits in a socket receive timeout (SO_RCVTIMEO: schedule_timeout, the timer
	# wheel), not in sleep's hrtimer: the wheel's softirq has been seen to stall alone while
	# hrtimers still fired, and kernel work waiting on it (an SRCU grace period, a workqueue
	# flush) then hangs. sleep stays the fallback where the host has no python3.
	hb=$(port testvm.hb)
	( chroot /host python3 -c 'if 1:
		import os, socket, struct
		s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
		while True:
			try:
				s.recv(1)
			except OSError:
				pass
			os.write(1, b".")' || while :; do echo .; sleep 5; done ) >"$hb" 2>/dev/null &
	enter "$run/cmd.sh" </dev/null >"$out" 2>"$err"
fi
status=$?
# What made nested guests' clocks misbehave before, on the console a failed run shows.
dmesg | grep -m2 -E 'TSC rate below|clocksource .tsc. as unstable' >/dev/ttyS0
report $status
"""


def kvm_here():
    """(True, why) when this machine's /dev/kvm is a hardware-assisted KVM that boots Linux.

    PVM (a KVM without svm/vmx in the CPU flags) runs the freestanding guests but not a stock
    Linux kernel, so it counts as no KVM here. Inside the test host the flags show svm.
    """
    import fcntl
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    try:
        KVM_GET_API_VERSION, KVM_CREATE_VM = 0xAE00, 0xAE01
        if fcntl.ioctl(fd, KVM_GET_API_VERSION) != 12:
            return False, "/dev/kvm has an unknown API version"
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm)
    except OSError as e:
        return False, f"/dev/kvm cannot create a VM: {e.strerror}"
    finally:
        os.close(fd)
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f
                      if line.startswith("flags")), [])
    if "svm" not in flags and "vmx" not in flags:
        return False, "/dev/kvm works but the CPU has no svm/vmx (PVM: no stock Linux guest)"
    return True, "/dev/kvm with hardware virtualization"


def where(mode=None):
    """'direct' or 'vm' for commands that need a KVM, and why. MODE (or $CROSVM_TEST_HOST)
    is 'auto' (the default), 'vm' (always the test host) or 'direct' (never)."""
    mode = mode or os.environ.get("CROSVM_TEST_HOST") or "auto"
    if mode not in ("auto", "vm", "direct"):
        raise Error(f"CROSVM_TEST_HOST={mode}: expected auto, vm or direct")
    if mode == "vm":
        return "vm", "the test host was asked for"
    ok, why = kvm_here()
    if mode == "direct":
        return "direct", why
    return ("direct" if ok else "vm"), why


def _log(msg):
    print(f"testvm: {msg}", file=sys.stderr, flush=True)


def check_tools():
    if shutil.which(QEMU) is None:
        raise Error(f"{QEMU} is missing (apt-get install qemu-system-x86)")
    if not os.access(VIRTIOFSD, os.X_OK):
        raise Error(f"{VIRTIOFSD} is missing (apt-get install qemu-system-x86, 7.2 ships it)")
    for dev in ("/dev/fuse",):
        pass


def host_initramfs(kernel):
    """The cached initramfs of the test host, rebuilt when its inputs change."""
    order = kernel.load_order(HOST_MODULES)
    init = HOST_INIT.replace("@MODULES@", " ".join("/lib/modules/" + m for m in order))
    h = hashlib.sha256()
    h.update(kernel.version.encode())
    h.update(init.encode())
    with open("/bin/busybox", "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    out = os.path.join(debkernel.cache_dir(), f"testvm-{h.hexdigest()[:16]}.cpio.gz")
    if os.path.exists(out):
        return out
    with debkernel.Lock(out + ".lock"):
        if os.path.exists(out):
            return out
        img = debkernel.Initramfs()
        img.busybox()
        for d in ("dev", "proc", "sys", "tmp", "host", "sbin"):
            img.mkdir(d)
        img.chardev("dev/console", 5, 1)
        img.modules(kernel, HOST_MODULES)
        img.file("init", init, 0o755)
        img.write(out)
    return out


class Slot:
    """One of N machine-wide places for a test host: more would starve the 2 cores."""

    def __init__(self, count):
        self.count = max(1, count)
        self.fd = -1

    def __enter__(self):
        import fcntl
        d = os.path.join(debkernel.cache_dir(), "slots")
        os.makedirs(d, exist_ok=True)
        fds = [os.open(os.path.join(d, str(i)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
               for i in range(self.count)]
        waited = False
        while self.fd < 0:
            for fd in fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.fd = fd
                    break
                except BlockingIOError:
                    continue
            if self.fd < 0:
                if not waited:
                    _log(f"waiting for one of {self.count} test host slots")
                    waited = True
                time.sleep(0.5)
        for fd in fds:
            if fd != self.fd:
                os.close(fd)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _die_with_parent():
    # The children must not outlive us, whatever kills us (ctest kills on its timeout).
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgrp()


def _command_script(argv, cwd, env):
    lines = ["# written by scripts/testvm", "set -e"]
    for key, value in sorted(env.items()):
        if key.isidentifier() and key not in ("PWD", "OLDPWD", "SHLVL", "_", "TERM_PROGRAM"):
            lines.append(f"export {key}={shlex.quote(value)}")
    # The command may tell it runs in a throw-away test host (e.g. to dump the host kernel's
    # state with SysRq when it fails, which it must not do to a developer's machine).
    lines.append("export CROSVM_IN_TEST_HOST=1")
    lines.append(f"cd {shlex.quote(cwd)}")
    lines.append("set +e")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines) + "\n"


class _Tail:
    """Copies what a growing file gains to a stream."""

    def __init__(self, path, stream):
        self.path = path
        self.stream = stream
        self.f = None

    def pump(self):
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except FileNotFoundError:
                return
        data = self.f.read()
        if data:
            self.stream.write(data)
            self.stream.flush()

    def close(self):
        self.pump()
        if self.f:
            self.f.close()


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived: unwind so that every child and file is cleaned up."""


def _on_signal(signum, frame):
    raise Terminated(f"signal {signum}")


def _remove_stale_rundirs():
    """Run directories whose testvm died without cleaning up (SIGKILL, say)."""
    try:
        names = os.listdir(RUN_PARENT)
    except OSError:
        return
    for name in names:
        if not name.startswith("crosvm-testvm."):
            continue
        d = os.path.join(RUN_PARENT, name)
        try:
            with open(os.path.join(d, "pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            # No pid file yet: a run that is just starting, unless it is old.
            try:
                if time.time() - os.stat(d).st_mtime < 3600:
                    continue
            except OSError:
                continue
        shutil.rmtree(d, ignore_errors=True)


def _monitor(path, *commands):
    """Sends human monitor commands to a QEMU; errors are ignored (best effort)."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            for c in commands:
                s.sendall(c.encode() + b"\n")
                time.sleep(0.5)
    except OSError:
        pass


class Frozen(Error):
    """The test host's kernel stopped (no heartbeat for FROZEN_S), or its timers stalled for
    longer than STALL_S during a command that then failed."""


def run(argv, cwd=None, env=None, timeout=1800, interactive=False, mem_mib=None,
        console_log=None, slots=None, retry=False):
    """Runs ARGV in a test host; returns its exit status. Raises Error when the host fails.

    A host that stopped or stalled (Frozen) reruns the command once in a fresh host. With
    retry, so does a command that failed (a status other than 0 and 77, "skipped"): the
    emulated SVM has faults of its own that no test can tell from a bug (docs/platform.md).
    Either way there are at most two runs, the second within what is left of the timeout,
    and a retry is logged to $CROSVM_TESTVM_RETRY_LOG so the test runner can list it.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    deadline = time.monotonic() + timeout

    def again(why):
        left = int(deadline - time.monotonic())
        if left < 120:
            return None
        _log(f"{why}; running the command again in a new test host")
        second = _run(argv, cwd, env, left, interactive, mem_mib, console_log, slots)
        _note_retry(argv, why, second)
        return second

    try:
        try:
            status = _run(argv, cwd, env, timeout, interactive, mem_mib, console_log, slots)
        except Frozen as e:
            _log(f"What the failed test host showed:\n{e}")
            status = again(f"the test host failed ({str(e).splitlines()[0]})")
            if status is None:
                raise
            return status
        if retry and status not in (0, 77):
            second = again(f"the command failed in the test host (status {status})")
            return status if second is None else second
        return status
    except Terminated as e:
        raise Error(f"stopped by {e}") from None


def _note_retry(argv, why, second):
    """Appends one line about a retry to $CROSVM_TESTVM_RETRY_LOG (when set)."""
    path = os.environ.get("CROSVM_TESTVM_RETRY_LOG")
    line = (f"{os.path.basename(argv[-1])}: {why}; "
            f"{'passed' if second == 0 else f'status {second}'} in a fresh test host\n")
    _log("retry: " + line.strip())
    if path:
        with open(path, "a") as f:
            f.write(line)


def _run(argv, cwd, env, timeout, interactive, mem_mib, console_log, slots):
    check_tools()
    _remove_stale_rundirs()
    cwd = os.path.realpath(cwd or os.getcwd())
    env = dict(os.environ if env is None else env)
    kernel = debkernel.ensure_kernel()
    initrd = host_initramfs(kernel)
    mem = mem_mib or int(os.environ.get("CROSVM_TESTVM_MEM", DEFAULT_MEM_MIB))
    nslots = slots or int(os.environ.get("CROSVM_TESTVM_SLOTS", DEFAULT_SLOTS))
    nonce = secrets.token_hex(8)
    os.makedirs(RUN_PARENT, exist_ok=True)
    rundir = tempfile.mkdtemp(prefix="crosvm-testvm.", dir=RUN_PARENT)
    procs = []
    try:
        with open(os.path.join(rundir, "pid"), "w") as f:
            f.write(str(os.getpid()))
        with open(os.path.join(rundir, "cmd.sh"), "w") as f:
            f.write(_command_script(argv, cwd, env))
        if interactive:
            open(os.path.join(rundir, "interactive"), "w").close()
        console = os.path.join(rundir, "console.log")
        out_log, err_log = os.path.join(rundir, "out"), os.path.join(rundir, "err")
        hb_log = os.path.join(rundir, "hb")
        sock = os.path.join(rundir, "vfs.sock")
        mon = os.path.join(rundir, "monitor.sock")
        with Slot(nslots):
            fsd = subprocess.Popen(
                [VIRTIOFSD, f"--socket-path={sock}", "-o", "source=/", "-o", "cache=always",
                 "-o", "sandbox=chroot", "-o", "xattr"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(rundir, "virtiofsd.log"), "wb"),
                preexec_fn=_die_with_parent)
            procs.append(fsd)
            deadline = time.monotonic() + 30
            while not os.path.exists(sock):
                if fsd.poll() is not None or time.monotonic() > deadline:
                    raise Error("virtiofsd did not start: " +
                                open(os.path.join(rundir, "virtiofsd.log")).read()[-2000:])
                time.sleep(0.02)
            append = ("console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off sysrq_always_enabled "
                      f"testvm.nonce={nonce} testvm.run={rundir}")
            cmd = [QEMU, "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                   "-M", "q35", "-accel", "tcg,thread=single", "-cpu", "EPYC,+svm,+npt",
                   "-smp", "1", "-m", f"{mem}M",
                   "-object", f"memory-backend-memfd,id=mem,size={mem}M,share=on",
                   "-numa", "node,memdev=mem",
                   "-kernel", kernel.vmlinuz, "-initrd", initrd, "-append", append,
                   "-chardev", f"socket,id=vfs,path={sock}",
                   "-device", "vhost-user-fs-pci,chardev=vfs,tag=hostroot",
                   "-serial", f"file:{console}",
                   "-monitor", f"unix:{mon},server=on,wait=off"]
            if interactive:
                cmd += ["-chardev", "stdio,id=tty,signal=off", "-serial", "chardev:tty"]
            else:
                cmd += ["-device", "virtio-serial-pci",
                        "-chardev", f"file,id=out,path={out_log}",
                        "-device", "virtserialport,chardev=out,name=testvm.out",
                        "-chardev", f"file,id=err,path={err_log}",
                        "-device", "virtserialport,chardev=err,name=testvm.err",
                        "-chardev", f"file,id=hb,path={hb_log}",
                        "-device", "virtserialport,chardev=hb,name=testvm.hb"]
            qemu = subprocess.Popen(
                cmd, stdin=None if interactive else subprocess.DEVNULL,
                stdout=None if interactive else subprocess.DEVNULL,
                stderr=open(os.path.join(rundir, "qemu.log"), "wb"),
                preexec_fn=_die_with_parent if not interactive else None)
            procs.append(qemu)
            tails = [] if interactive else [_Tail(out_log, sys.stdout.buffer),
                                            _Tail(err_log, sys.stderr.buffer)]
            deadline = time.monotonic() + timeout
            timed_out = frozen = False
            beats, last_beat, max_gap = 0, None, 0.0
            nudges, last_nudge = 0, 0.0
            while qemu.poll() is None:
                now = time.monotonic()
                if not interactive:
                    try:
                        size = os.path.getsize(hb_log)
                    except OSError:
                        size = 0
                    if size != beats:
                        if last_beat is not None:
                            max_gap = max(max_gap, now - last_beat)
                        beats, last_beat = size, now
                    # Counted from the first beat: before it the host is still booting.
                    frozen = last_beat is not None and now - last_beat > FROZEN_S
                    # A late beat: nudge the host with an interrupt (a shift key press on its
                    # PS/2 keyboard, which nothing reads). A host that lost its timer interrupt
                    # takes the tick again on any interrupt (docs/platform.md).
                    if (last_beat is not None and now - last_beat > NUDGE_S and
                            now - last_nudge > NUDGE_S / 2):
                        _monitor(mon, "sendkey shift")
                        nudges, last_nudge = nudges + 1, now
                if now > deadline or frozen:
                    timed_out = not frozen
                    # What was everyone doing? Blocked tasks and all CPUs' stacks (magic
                    # SysRq w and l) go to the console log shown below.
                    _monitor(mon, "sendkey alt-sysrq-w", "sendkey alt-sysrq-l")
                    time.sleep(3)
                    qemu.kill()
                    qemu.wait()
                    break
                for t in tails:
                    t.pump()
                try:
                    qemu.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            for t in tails:
                t.close()
            if last_beat is not None and not frozen:
                max_gap = max(max_gap, time.monotonic() - last_beat)
            if max_gap > 15:
                _log(f"the test host's heartbeat stalled for up to {max_gap:.0f} s"
                     f" ({nudges} nudges)")
        with open(console, "rb") as f:
            log = f.read().decode(errors="replace")
        if console_log:
            shutil.copy(console, console_log)
        marker = f"testvm-status-{nonce}: "
        if marker in log:
            status = int(log.split(marker, 1)[1].split()[0])
            if status != 0 and max_gap > STALL_S:
                raise Frozen(f"the command failed (status {status}) after the test host's "
                             f"timers stalled for {max_gap:.0f} s (no heartbeat)\n"
                             f"--- test host console (last 3000 bytes) ---\n{log[-3000:]}")
            return status
        if frozen:
            why = f"the test host's kernel stopped (no heartbeat for {FROZEN_S} s)"
        elif timed_out:
            why = f"the command did not end within {timeout} s"
        else:
            why = f"the test host ended (QEMU status {qemu.returncode}) without a status"
        qlog = open(os.path.join(rundir, "qemu.log"), errors="replace").read()
        raise (Frozen if frozen else Error)(
            f"{why}\n--- test host console (last 6000 bytes) ---\n{log[-6000:]}"
            f"\n--- qemu ---\n{qlog[-2000:]}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(rundir, ignore_errors=True)
