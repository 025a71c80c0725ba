"""The Linux guest (scripts/lib/linuxguest.py) under crosvm or QEMU, driven from the host.

A LinuxVM boots Debian's kernel with the busybox initramfs in agent mode: the guest's console
runs one shell command per line and answers "@@crosvm-done <status>" after its output, so one
boot can check many things. Standard library only.
"""

import os
import re
import subprocess
import sys
import time

import guestlib
import vmm

SRC_DIR = os.environ.get("SRC_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(SRC_DIR, "scripts", "lib"))
import linuxguest  # noqa: E402

BOOT_TIMEOUT = int(os.environ.get("CROSVM_LINUX_BOOT_TIMEOUT", "240"))
DONE_RE = re.compile(rb"@@crosvm-done (\d+)\r?\n")
# Kernel log lines a clean boot never has (the QEMU comparison decides what counts).
BAD_DMESG = ("WARNING:", "BUG:", "Call Trace", "ACPI Error", "ACPI BIOS Error")

_GUEST = None


def guest():
    """The built guest (kernel, initramfs, rootfs paths), built once per process."""
    global _GUEST
    if _GUEST is None:
        _GUEST = linuxguest.build()
    return _GUEST


class CommandFailed(AssertionError):
    pass


class LinuxVM:
    """One VM running the Linux guest; use as a context manager (killed at the end).

    kernel: "vmlinuz" (bzImage) or "vmlinux"; run: crosvm.run= value ("agent" to drive it);
    opts: extra crosvm run options; params: extra kernel command line text.
    """

    def __init__(self, *opts, kernel="vmlinuz", run="agent", params="", sandbox=True,
                 initramfs=True, vmm_cmd=None):
        g = guest()
        self.kernel = g.vmlinux if kernel == "vmlinux" else g.vmlinuz
        cmdline = f"quiet loglevel=1 crosvm.run={run} {params}".strip()
        args = list(opts)
        if initramfs:
            args += ["-i", g.initramfs]
        args += ["-p", cmdline]
        self.cmd = vmm_cmd or vmm.command(self.kernel, *args, sandbox=sandbox)
        self.session = guestlib.Session(self.cmd)
        self.pid = self.session.proc.pid
        self.status = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.session.proc.poll() is None:
            vmm.kill_tree(self.session)
        else:
            self.session.close()

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        self.session.expect(linuxguest.MARKER_READY, timeout=timeout)
        self.session.expect("\n", timeout=10)
        return self

    def sh(self, command, timeout=180):
        """Runs one shell line in the guest: (status, output text)."""
        if "\n" in command:
            raise ValueError("one line at a time")
        start = len(self.session.output)
        self.session._pos = start
        self.session.send(command + "\n")
        deadline = time.monotonic() + timeout
        while True:
            m = DONE_RE.search(self.session.output, start)
            if m:
                self.session._pos = m.end()
                out = self.session.output[start:m.start()].decode(errors="replace")
                return int(m.group(1)), out.replace("\r\n", "\n")
            left = deadline - time.monotonic()
            if left <= 0:
                # The console before the command too (a kernel message, a lockup) and what
                # the VMM's threads are doing: a guest that stopped answering, or a VMM.
                raise TimeoutError(f"guest command {command!r} did not finish in {timeout} s; "
                                   f"output: {self.session.output[start:][-3000:]!r}\n"
                                   f"console before it: {self.session.output[:start][-1500:]!r}"
                                   f"\n{vmm.threads_state(self.pid)}")
            if self.session._read(left) is None:
                raise EOFError(f"the VM ended during {command!r}: "
                               f"{self.session.output[-3000:]!r}\n{self.stderr()[-3000:]}")

    def check(self, command, timeout=180):
        """Runs a shell line that must succeed; returns its output."""
        status, out = self.sh(command, timeout)
        if status != 0:
            raise CommandFailed(f"guest command {command!r} exited {status}: {out[-3000:]}")
        return out

    def send(self, text):
        """Sends a line the guest does not answer (it ends the VM, say)."""
        self.session.send(text)

    def wait_exit(self, timeout=120, before_kill=None):
        """Waits for the VMM to end; returns its exit status (None if it had to be killed).

        before_kill(): what to keep of a VMM that has to be killed (threads_at_kill).
        """
        rc, _ = self.session.wait(timeout, before_kill)
        self.threads_at_kill = getattr(self.session, "at_kill", None)
        self.status = rc
        return rc

    def stderr(self):
        self.session._stderr.seek(0)
        return self.session._stderr.read().decode(errors="replace")

    def output(self):
        return self.session.output.decode(errors="replace")


def bad_dmesg_lines(text):
    return [line for line in text.splitlines() if any(b in line for b in BAD_DMESG)]


def guest_bad_dmesg(vm):
    """The guest kernel log's bad lines, filtered in the guest (a serial console is slow)."""
    pattern = "|".join(BAD_DMESG)
    status, out = vm.sh(f"dmesg | grep -E '{pattern}'", timeout=120)
    if status not in (0, 1):
        raise CommandFailed(f"dmesg | grep exited {status}: {out}")
    return bad_dmesg_lines(out)


def qemu_q35(*extra, mem_mib=512, smp=1, params=""):
    """The QEMU -M q35 command that boots the same guest in agent mode, as the reference."""
    g = guest()
    append = f"console=ttyS0 panic=-1 quiet loglevel=1 crosvm.run=agent {params}".strip()
    return [guestlib.QEMU, "-M", "q35", "-enable-kvm", "-cpu", "host", "-m", f"{mem_mib}M",
            "-smp", str(smp), "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-no-reboot", "-kernel", g.vmlinuz, "-initrd", g.initramfs,
            "-append", append, *extra]
