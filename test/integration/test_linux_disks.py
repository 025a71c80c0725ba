#!/usr/bin/env python3
"""Debian's Linux kernel booting to an init on a root disk, as crosvm's three ways of naming
one (-r, --rwroot, --block ...,root), and an interactive console on a pseudo-terminal.

The initramfs loads virtio-blk (a module in Debian's kernel), mounts the root= the VMM put on
the command line with its ro/rw flag and switches to the disk's /sbin/init, which says where
it runs.
"""

import os
import pty
import select
import shutil
import subprocess
import termios
import time
import unittest

import linuxvm
import vmm
from test_linux import LinuxTestCase


class RootDisk(LinuxTestCase):
    def rootfs(self):
        path = self.td.join("rootfs.ext4")
        shutil.copyfile(linuxvm.guest().rootfs, path)
        return path

    def assertOnRootDisk(self, vm, mode):
        self.assertIn("init on the root disk", vm.output())
        vm.check("test -e /etc/crosvm-rootfs")
        self.assertFalse(vm.sh("test -e /etc/crosvm-initramfs")[0] == 0)
        fields = vm.check("grep ' / ' /proc/mounts | grep -v rootfs").split()
        self.assertEqual(fields[0], "/dev/vda")
        self.assertEqual(fields[2], "ext4")
        self.assertIn(mode, fields[3].split(","))
        self.assertIn(f"root=/dev/vda {mode}", vm.check("cat /proc/cmdline"))

    def test_rwroot_unsandboxed_writes_reach_the_image(self):
        image = self.rootfs()
        vm = self.boot("--rwroot", image, sandbox=False)
        self.assertOnRootDisk(vm, "rw")
        vm.check("echo from-the-root-disk > /hello && sync")
        vm.send("poweroff -f\n")
        self.assertExit(vm, vmm.STATUS_STOP, 180)
        self.assertEqual(self.host_file(image, "hello"), b"from-the-root-disk\n")

    def test_block_root_sandboxed(self):
        image = self.rootfs()
        data = self.ext4("data.ext4", files={"seed": b"seed\n"})
        vm = self.boot("--block", f"path={image},root", "--block", f"{data},ro")
        self.assertOnRootDisk(vm, "rw")
        # The root disk is vda whatever its place among the disks; the other is vdb.
        self.assertReadOnlyDisk(vm, "vdb")
        vm.send("poweroff -f\n")
        self.assertExit(vm, vmm.STATUS_STOP, 180)


class Console(LinuxTestCase):
    """-r (a read-only root disk) with the guest's shell on this process's pseudo-terminal."""

    def read_until(self, master, text, timeout=linuxvm.BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while text not in self.buf:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "did not see %r in %r" % (text, self.buf[-2000:]))
            if select.select([master], [], [], left)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                self.assertTrue(chunk, "the console closed before %r" % text)
                self.buf += chunk
        idx = self.buf.index(text) + len(text)
        seen, self.buf = self.buf[:idx], self.buf[idx:]
        return seen

    def test_interactive_shell_on_a_read_only_root(self):
        image = self.td.join("rootfs.ext4")
        shutil.copyfile(linuxvm.guest().rootfs, image)
        g = linuxvm.guest()
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        before = termios.tcgetattr(slave)
        cmd = vmm.command(g.vmlinuz, "-r", image, "-i", g.initramfs, "-p",
                          "quiet crosvm.run=shell")
        err = open(self.td.join("stderr"), "w+b")
        self.addCleanup(err.close)
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=err)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.buf = b""
        self.read_until(master, b"init on the root disk")
        self.read_until(master, b"/ # ")
        # Raw while the VM runs: the guest's line discipline does the editing, not ours.
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ICANON)
        os.write(master, b"echo answer-$((6*7))\r")
        self.read_until(master, b"answer-42")
        os.write(master, b"touch /new-file || echo refused-$?\r")
        self.read_until(master, b"Read-only file system")
        self.read_until(master, b"refused-1")
        os.write(master, b"poweroff\r")
        try:
            status = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            status = None
            threads = vmm.threads_state(proc.pid)
            # What the guest said after poweroff is the clue to why it did not end.
            while select.select([master], [], [], 1)[0]:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                self.buf += chunk
        err.seek(0)
        self.assertEqual(status, vmm.STATUS_STOP,
                         "console tail: %r\nstderr: %r\nthreads: %s" %
                         (self.buf[-2000:], err.read(), status is None and threads))
        after = termios.tcgetattr(slave)
        mask = termios.ICANON | termios.ECHO | termios.ISIG
        self.assertEqual(after[3] & mask, before[3] & mask)
        self.assertEqual(after[0], before[0])
        self.assertEqual(after[1], before[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
