"""The sandbox: every device in its own jailed process, seccomp kills, policies."""

import glob
import os
import re
import shutil
import time
import unittest

import vmm
from vmm import guest, run_crosvm

SRC_DIR = os.environ.get("SRC_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
POLICY_DIR = os.path.join(SRC_DIR, "policies")
PIVOT_ROOT = "/var/empty"

# What a device process may hold, beyond the back-end files a test passes it.
ALLOWED_FD_TARGETS = re.compile(
    r"^(anon_inode:\[(eventfd|eventpoll)\]|socket:\[\d+\]|pipe:\[\d+\])$")


def device_processes(pid, expect):
    """Waits until crosvm (pid) has `expect` children; returns {name: pid}."""
    def ready():
        kids = vmm.children(pid)
        return kids if len(kids) >= expect else None
    kids = vmm.wait_for(ready, timeout=20)
    out = {}
    for k in kids:
        with open("/proc/%d/comm" % k) as f:
            out[f.read().strip()] = k
    return out


class DeviceProcesses(unittest.TestCase):
    def setUp(self):
        self.td = vmm.TempDir()
        self.disk = self.td.join("disk.img")
        with open(self.disk, "wb") as f:
            f.truncate(1 << 20)
        self.session = vmm.spawn_crosvm(guest("demo"), "--rwdisk", self.disk)
        self.session.expect("demo> ", timeout=30)

    def tearDown(self):
        vmm.kill_tree(self.session)
        self.td.__exit__()

    def test_every_device_is_jailed(self):
        pid = self.session.proc.pid
        procs = device_processes(pid, 4)
        # serial1 is COM1's host side (stdout, stdin); COM2-4 are sinks with no host side,
        # and every UART's registers are served in the main process.
        self.assertEqual(sorted(procs), ["serial1", "virtio-balloon", "virtio-blk0",
                                         "virtio-rng"])
        parent_ns = {ns: os.readlink("/proc/%d/ns/%s" % (pid, ns))
                     for ns in ("mnt", "pid", "net", "ipc")}
        empty = os.stat(PIVOT_ROOT)
        for name, child in procs.items():
            st = vmm.proc_status(child)
            self.assertEqual(st["Seccomp"], "2", name)
            self.assertEqual(st["NoNewPrivs"], "1", name)
            self.assertEqual(st["CapEff"], "0000000000000000", name)
            self.assertEqual(st["CapPrm"], "0000000000000000", name)
            self.assertEqual(st["CapBnd"], "0000000000000000", name)
            for ns, parent in parent_ns.items():
                self.assertNotEqual(os.readlink("/proc/%d/ns/%s" % (child, ns)), parent,
                                    "%s shares the %s namespace" % (name, ns))
            root = os.stat("/proc/%d/root" % child)
            self.assertEqual((root.st_dev, root.st_ino), (empty.st_dev, empty.st_ino), name)
            self.assertEqual(os.listdir("/proc/%d/root/" % child), [], name)
            self.check_fds(name, child)

    def test_serial_processes_run_sched_batch(self):
        # A console's pump gets the vCPU's bytes through a pipe: it must not preempt the
        # vCPU thread for each one (SCHED_BATCH, policy 3); the other devices stay normal (0).
        procs = device_processes(self.session.proc.pid, 4)
        for name, child in procs.items():
            with open("/proc/%d/stat" % child) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            policy = int(fields[38])  # field 41 of proc(5), counted after "pid (comm)"
            self.assertEqual(policy, 3 if name.startswith("serial") else 0, name)

    def check_fds(self, name, child):
        for fd in os.listdir("/proc/%d/fd" % child):
            target = os.readlink("/proc/%d/fd/%s" % (child, fd))
            if ALLOWED_FD_TARGETS.match(target) or fd == "2":
                continue  # fd 2 is the VMM's stderr, kept for logging
            # Files: only its own back end (the disk image and its io_uring, the entropy
            # source, or the console's stdout).
            if name == "virtio-blk0":
                # Its image, and the io_uring that works on it (restricted to the
                # image's registered file: test_virtio_blk).
                self.assertIn(target, (self.disk, "anon_inode:[io_uring]"),
                              "%s holds %s" % (name, target))
            elif name == "virtio-rng":
                self.assertEqual(target, "/dev/urandom", "%s holds %s" % (name, target))
            elif target.startswith("/"):
                self.assertFalse(target.startswith("/dev/kvm"), name)
                self.assertNotIn("memfd:", target, name)
                self.assertTrue(name.startswith("serial"),
                                "%s holds fd %s -> %s" % (name, fd, target))
            else:
                self.assertNotIn("kvm", target, "%s holds %s" % (name, target))
                self.assertNotIn("memfd", target, "%s holds %s" % (name, target))

    def test_main_process_dropped_capabilities(self):
        st = vmm.proc_status(self.session.proc.pid)
        self.assertEqual(st["CapEff"], "0000000000000000")


class Violations(unittest.TestCase):
    def test_seccomp_kill_ends_the_vm_with_crash_status(self):
        s = vmm.spawn_crosvm(guest("demo"), "--test-seccomp-violation", "virtio-rng")
        try:
            status, out = s.wait(timeout=30)
            pids_left = [p for p in vmm.children(s.proc.pid)]
        finally:
            vmm.kill_tree(s)
        self.assertEqual(status, vmm.STATUS_CRASH, out)
        self.assertIn("virtio-rng", out)
        self.assertIn("SIGSYS", out)
        self.assertIn("getppid", out)
        self.assertEqual(pids_left, [])
        # No device process of this VM is left behind.
        for comm in glob.glob("/proc/[0-9]*/comm"):
            try:
                with open(comm) as f:
                    name = f.read().strip()
                with open(comm.replace("comm", "stat")) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            self.assertFalse(ppid == s.proc.pid, "%s left behind" % name)

    def test_log_failures_keeps_the_vm_running(self):
        s = vmm.spawn_crosvm(guest("demo"), "--seccomp-log-failures",
                             "--test-seccomp-violation", "serial1")
        try:
            s.expect("demo> ", timeout=30)
            time.sleep(0.5)
            self.assertIsNone(s.proc.poll())
            s.send("echo still here\n")
            s.expect("still here", timeout=20)
            s.send("poweroff\n")
            status, out = s.wait(timeout=20)
        finally:
            vmm.kill_tree(s)
        self.assertEqual(status, 0, out)


class Options(unittest.TestCase):
    def test_pivot_root_is_created(self):
        with vmm.TempDir() as td:
            root = td.join("new", "empty")
            os.mkdir(td.join("new"))
            r = run_crosvm(guest("demo"), "--pivot-root", root, "-p", "demo.oneshot")
            self.assertEqual(r.status, 0, r)
            self.assertTrue(os.path.isdir(root))

    def test_pivot_root_not_a_directory(self):
        with vmm.TempDir() as td:
            path = td.join("file")
            open(path, "w").close()
            r = run_crosvm(guest("demo"), "--pivot-root", path, "-p", "demo.oneshot")
            self.assertEqual(r.status, vmm.STATUS_INVALID, r)
            self.assertIn("not a directory", r.err)

    def test_policy_dir(self):
        with vmm.TempDir() as td:
            for p in glob.glob(os.path.join(POLICY_DIR, "*.policy")):
                shutil.copy(p, td.path)
            r = run_crosvm(guest("demo"), "--seccomp-policy-dir", td.path, "-p",
                           "demo.oneshot")
            self.assertEqual(r.status, 0, r)
            # A broken policy is refused with its file and line, before the VM starts.
            with open(td.join("rng_device.policy"), "a") as f:
                f.write("\nnot_a_syscall: 1\n")
            r = run_crosvm(guest("demo"), "--seccomp-policy-dir", td.path, "-p",
                           "demo.oneshot")
            self.assertEqual(r.status, vmm.STATUS_INVALID, r)
            self.assertIn("rng_device.policy:", r.err)
            self.assertIn("not_a_syscall", r.err)
            # The directory really is used: a serial policy without write(2) gets the
            # console process killed by name as soon as the guest prints.
            with open(td.join("common_device.policy")) as f:
                common = f.read()
            with open(td.join("nowrite.policy"), "w") as f:
                f.write(re.sub(r"(?m)^write: 1$", "", common))
            with open(td.join("serial_device.policy"), "w") as f:
                f.write("@include ./nowrite.policy\nioctl: arg1 == TCGETS\nfstat: 1\n"
                        "newfstatat: 1\n")
            with open(td.join("rng_device.policy"), "w") as f:
                f.write("@include ./common_device.policy\n")
            r = run_crosvm(guest("demo"), "--seccomp-policy-dir", td.path, "-p",
                           "demo.oneshot")
            self.assertEqual(r.status, vmm.STATUS_CRASH, r)
            self.assertIn("serial1", r.err)
            self.assertIn("SIGSYS", r.err)


class Policies(unittest.TestCase):
    """No policy allows what a device never needs."""

    FORBIDDEN = ("execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
                 "kexec_load", "init_module", "finit_module", "mount", "pivot_root",
                 "chroot", "setuid", "setgid", "bpf", "perf_event_open", "fork", "vfork")

    def rules(self, path):
        out = {}
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if not line or line.startswith("@"):
                    continue
                name, _, rule = line.partition(":")
                out[name.strip()] = rule.strip()
        return out

    def test_policies_exist_for_every_device(self):
        for name in ("common_device", "serial_device", "rng_device", "block_device",
                     "balloon_device", "console_device", "vsock_device", "vhost_vsock_device",
                     "fs_device"):
            self.assertTrue(os.path.exists(os.path.join(POLICY_DIR, name + ".policy")), name)

    def test_nothing_dangerous_is_allowed(self):
        for path in glob.glob(os.path.join(POLICY_DIR, "*.policy")):
            rules = self.rules(path)
            for sc in self.FORBIDDEN:
                self.assertNotIn(sc, rules, "%s allows %s" % (path, sc))
            for sc in ("open", "openat", "openat2", "creat"):
                rule = rules.get(sc)
                # virtio-fs's server opens files: it is its job. Only relative to descriptors
                # it holds (openat2 RESOLVE_BENEATH below an inode, or an inode's magic link
                # in its private /proc/self/fd), in a process whose root is the shared
                # directory (test_linux_virtiofs checks that root); never open or creat.
                if os.path.basename(path) == "fs_device.policy" and sc in ("openat", "openat2"):
                    continue
                self.assertTrue(rule is None or rule.startswith("return"),
                                "%s allows %s" % (path, sc))
            if os.path.basename(path) == "vsock_device.policy":
                # The user-space vsock device connects guest streams to UNIX sockets under
                # its jail's one directory: AF_UNIX streams only.
                self.assertRegex(rules.get("socket", ""),
                                 r"^arg0 == AF_UNIX && arg1 == SOCK_STREAM\b", path)
            elif not os.path.basename(path).startswith(("net",)):
                self.assertNotIn("socket", rules, "%s allows socket" % path)
                self.assertNotIn("connect", rules, "%s allows connect" % path)
            self.assertNotEqual(rules.get("clone"), "1", "%s allows any clone" % path)


if __name__ == "__main__":
    unittest.main()
