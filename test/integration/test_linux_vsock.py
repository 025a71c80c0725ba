#!/usr/bin/env python3
"""Host-guest channels with Debian's Linux guest: virtio-vsock (the kernel's vhost-vsock, and
the user-space device with Firecracker's UNIX socket protocol), virtio-console and pvpanic-pci.

Two boots, each checking many things, and one VM that must not start:
  - vhost-vsock (--cid, crosvm's older option), sandboxed, with the guest's console and its
    agent shell on hvc0, a virtio-console that takes stdin: 32 MiB host to guest (host
    socat VSOCK-CONNECT to the guest's listener) and 32 MiB guest to host (the guest connects
    to a host socat VSOCK-LISTEN), intact; a second VM with the same CID is refused with the
    kernel's EADDRINUSE; then the guest panics (sysrq c) with pvpanic-pci bound and
    pvpanic-mmio unbound from the port: status 34.
  - user-space vsock (uds-path), sandboxed, COM1 as the console and a second virtio-console
    port writing to a file: 32 MiB each way through the UNIX socket protocol, 64 concurrent
    connections each way, a host client sending garbage, a guest peer that dies mid-stream,
    a host listener that never accepts, a guest port nobody listens on; the VM keeps running
    after each, and powers off cleanly (0), its socket file removed.
The guest's vsock tool is test/linux/tools/crosvm-vsock.c (busybox has none).
"""

import os
import select
import shutil
import socket
import subprocess
import threading
import time
import unittest
import zlib

import linuxvm
import vmm
from test_linux import LinuxTestCase

MIB32 = 32 << 20
CONSOLE = "type=stdout,hardware=virtio-console,console,stdin"


def parse_conn(line):
    """A crosvm-vsock result line as a dict (conn, sent, rcvd, crc_sent, crc_rcvd)."""
    out = {}
    for field in line.split():
        k, _, v = field.partition("=")
        out[k] = int(v, 16) if k.startswith("crc") else int(v)
    return out


def results(text):
    return sorted((parse_conn(l) for l in text.splitlines() if l.startswith("conn=") and
                   "dying" not in l), key=lambda r: r["conn"])


def random_file(path, size):
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return zlib.crc32(data)


def recv_all(sock, timeout=300):
    """Reads to EOF: (bytes, crc32)."""
    sock.settimeout(timeout)
    n, crc = 0, 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return n, crc
        n += len(chunk)
        crc = zlib.crc32(chunk, crc)


class Guest:
    """Helpers around one booted VM's agent."""

    def __init__(self, vm):
        self.vm = vm

    def listen(self, port, mode, n=1, tag=None):
        """Starts crosvm-vsock listening in the background; returns once it listens."""
        tag = tag or f"l{port}"
        self.vm.check(f"rm -f /tmp/{tag}.ready; crosvm-vsock -n {n} -r /tmp/{tag}.ready "
                      f"listen {port} {mode} > /tmp/{tag}.out 2>&1 & echo $! > /tmp/{tag}.pid")
        # Until it listens; if it ended instead, or never gets there, say what it printed.
        self.vm.check(f"i=0; ok=1; while [ ! -e /tmp/{tag}.ready ]; do "
                      f"if ! kill -0 $(cat /tmp/{tag}.pid) || [ $i -ge 1200 ]; then "
                      f"echo listener {tag}: not listening; cat /tmp/{tag}.out; ps; ok=0; "
                      f"break; fi; i=$((i + 1)); sleep 0.1; done; [ $ok = 1 ]", timeout=600)
        return tag

    def connect(self, cid, port, mode, n=1, tag=None):
        tag = tag or f"c{port}"
        self.vm.check(f"crosvm-vsock -n {n} connect {cid} {port} {mode} > /tmp/{tag}.out "
                      f"2>&1 &")
        return tag

    def results(self, tag, timeout=300):
        """Waits for the background tool to end: its result lines."""
        self.vm.check("wait", timeout=timeout)
        return results(self.vm.check(f"cat /tmp/{tag}.out"))


class UdsHost:
    """The host side of the user-space device's UNIX socket protocol."""

    def __init__(self, path):
        self.path = path

    def connect(self, port, timeout=60):
        """CONNECT to a guest port: (socket, the OK line) or (socket, None) if refused."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        s.sendall(f"CONNECT {port}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                return s, None
            line += c
        return s, line.decode()

    def listen(self, port, backlog=64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(f"{self.path}_{port}")
        s.listen(backlog)
        return s


class Vsock(LinuxTestCase):
    def host_bytes(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_vhost_vsock_console_and_pvpanic_pci(self):
        self.assertIsNotNone(shutil.which("socat"), "socat is missing")
        self.assertTrue(os.path.exists("/dev/vhost-vsock"), "no /dev/vhost-vsock here")
        vm = self.boot("--cid", "3", "--serial", CONSOLE)
        g = Guest(vm)

        # The console is hvc0 (a virtio console): this agent shell reads hvc0, typed on stdin.
        self.assertEqual(vm.check("cat /sys/class/tty/console/active").strip(), "hvc0")
        self.assertIn("console=hvc0", vm.check("cat /proc/cmdline"))
        self.assertEqual(vm.check("readlink /proc/self/fd/1").strip(), "/dev/hvc0")
        self.assertEqual(vm.check("echo typed-on-stdin").strip(), "typed-on-stdin")

        # Host to guest: socat connects to the guest's listener.
        data = self.td.join("h2g")
        crc = random_file(data, MIB32)
        g.listen(5000, "recv")
        res = subprocess.run(["socat", "-u", f"FILE:{data}", "VSOCK-CONNECT:3:5000"],
                             capture_output=True, timeout=600)
        self.assertEqual(res.returncode, 0, res.stderr)
        r = g.results("l5000")
        self.assertEqual([(x["rcvd"], x["crc_rcvd"]) for x in r], [(MIB32, crc)])

        # Guest to host: the guest connects to a host socat listening on VSOCK port 6000.
        out = self.td.join("g2h")
        socat = subprocess.Popen(["socat", "-d", "-d", "-u", "VSOCK-LISTEN:6000",
                                  f"CREATE:{out}"], stderr=subprocess.PIPE)
        self.addCleanup(socat.kill)
        log = b""
        # Unbuffered reads: a buffered readline() could take socat's two lines in one read
        # and leave select() waiting on an empty pipe for a line already read.
        fd = socat.stderr.fileno()
        while b"listening on" not in log:
            self.assertTrue(select.select([fd], [], [], 60)[0],
                            "%r\n%s" % (log, vmm.threads_state(socat.pid)))
            chunk = os.read(fd, 4096)
            self.assertTrue(chunk, f"socat ended: {log!r}")
            log += chunk
        g.connect(2, 6000, f"send {MIB32}")
        r = g.results("c6000")
        self.assertEqual(socat.wait(120), 0, socat.stderr.read())
        socat.stderr.close()
        with open(out, "rb") as f:
            got = f.read()
        self.assertEqual(len(r), 1)
        self.assertEqual((len(got), zlib.crc32(got)), (MIB32, r[0]["crc_sent"]))
        self.assertEqual(r[0]["sent"], MIB32)

        # The CID is this VM's: another VM asking for it is refused with the kernel's error.
        g2 = linuxvm.guest()
        res = subprocess.run(vmm.command(g2.vmlinuz, "--vsock", "cid=3", "-i", g2.initramfs),
                             capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(res.returncode, vmm.STATUS_INVALID, res.stderr)
        self.assertIn(b"EADDRINUSE", res.stderr)
        self.assertIn(b"guest CID 3", res.stderr)

        # pvpanic-pci (1b36:0011) is bound; a kernel panic ends the VM with 34.
        self.assertTrue(vm.check("ls /sys/bus/pci/drivers/pvpanic-pci/ | grep :").strip())
        dev = vm.check("grep -l 0x0011 /sys/bus/pci/devices/*/device").strip()
        self.assertEqual(vm.check(f"cat {os.path.dirname(dev)}/vendor").strip(), "0x1b36")
        # The port's driver (pvpanic-mmio, on the DSDT's QEMU0001) lets go first, so the
        # panic can only be reported through the PCI function.
        vm.check("echo QEMU0001:00 > /sys/bus/platform/drivers/pvpanic-mmio/unbind")
        self.assertNotIn("QEMU0001", vm.check("ls /sys/bus/platform/drivers/pvpanic-mmio/"))
        vm.send("echo c > /proc/sysrq-trigger\n")
        self.assertExit(vm, vmm.STATUS_PANIC, 120)
        self.assertIn("pvpanic: the guest panicked", vm.stderr())

    def test_user_space_vsock_and_console_ports(self):
        path = self.td.join("v.sock")
        hvc1 = self.td.join("hvc1.out")
        vm = self.boot("--vsock", f"cid=4,uds-path={path}",
                       "--serial", f"type=file,path={hvc1},hardware=virtio-console,num=2",
                       "--serial", "type=sink,hardware=virtio-console,num=1")
        g = Guest(vm)
        host = UdsHost(path)

        # Two virtio-console devices besides COM1 (the console): hvc0 (num=1, a sink) and
        # hvc1 (num=2), which writes to its file.
        vm.check("echo to-the-second-port > /dev/hvc1")
        deadline = time.monotonic() + 30
        while b"to-the-second-port" not in self.host_bytes(hvc1):
            self.assertLess(time.monotonic(), deadline, "nothing reached hvc1's file")
            time.sleep(0.2)

        # Host to guest, 32 MiB, through "CONNECT 5000\n".
        g.listen(5000, "recv")
        s, ok = host.connect(5000)
        self.assertRegex(ok or "", r"^OK \d+\n$")
        self.assertGreaterEqual(int(ok.split()[1]), 1 << 30)
        payload = os.urandom(MIB32)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), (0, 0))
        s.close()
        r = g.results("l5000")
        self.assertEqual([(x["rcvd"], x["crc_rcvd"]) for x in r],
                         [(MIB32, zlib.crc32(payload))])

        # Guest to host, 32 MiB: the guest connects to CID 2 port 6000, which is PATH_6000.
        lsock = host.listen(6000)
        g.connect(2, 6000, f"send {MIB32}")
        lsock.settimeout(120)
        c, _ = lsock.accept()
        n, crc = recv_all(c)
        c.close()
        r = g.results("c6000")
        self.assertEqual((n, crc), (MIB32, r[0]["crc_sent"]))
        lsock.close()

        # 64 concurrent connections each way, echoed.
        g.listen(7000, "echo", n=64)
        conns = [host.connect(7000) for _ in range(64)]
        self.assertTrue(all(ok and ok.startswith("OK ") for _, ok in conns))
        blobs = [os.urandom(64 << 10) for _ in conns]
        echoed = [None] * len(conns)

        def talk(i):
            s = conns[i][0]
            s.sendall(blobs[i])
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
            echoed[i] = got
            s.close()

        threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertEqual(echoed, blobs)
        self.assertEqual(len(g.results("l7000")), 64)

        lsock = host.listen(7001)
        lsock.settimeout(120)
        g.connect(2, 7001, f"send {64 << 10}", n=64)

        def echo(c):
            while True:
                chunk = c.recv(1 << 16)
                if not chunk:
                    break
                c.sendall(chunk)
            c.close()

        threads = []
        for _ in range(64):
            c, _ = lsock.accept()
            threads.append(threading.Thread(target=echo, args=(c,)))
            threads[-1].start()
        for t in threads:
            t.join(300)
        r = g.results("c7001")
        self.assertEqual(len(r), 64)
        for x in r:
            self.assertEqual((x["sent"], x["rcvd"]), (64 << 10, 64 << 10))
            self.assertEqual(x["crc_sent"], x["crc_rcvd"])
        lsock.close()

        # A host client sending garbage instead of CONNECT is closed; the VM goes on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.0\n\n")
        s.settimeout(30)
        try:
            self.assertEqual(s.recv(16), b"")
        except ConnectionResetError:
            pass
        s.close()
        # A guest port nobody listens on: the guest refuses, the client is closed, no OK.
        s, ok = host.connect(5999)
        self.assertIsNone(ok)
        s.close()
        self.assertEqual(vm.check("echo alive").strip(), "alive")

        # A guest peer that dies mid-stream: the host's writes fail, the VM goes on.
        g.listen(8000, "die 1048576", tag="die")
        s, ok = host.connect(8000)
        self.assertTrue(ok)
        with self.assertRaises((BrokenPipeError, ConnectionResetError)):
            s.settimeout(120)
            for _ in range(MIB32 // (1 << 20)):
                s.sendall(os.urandom(1 << 20))
        s.close()
        self.assertIn("dying after 1048576", vm.check("wait; cat /tmp/die.out"))
        self.assertEqual(vm.check("echo alive").strip(), "alive")

        # A host listener that never accepts: the guest's sender blocks once the buffers are
        # full (credit), further connections are refused when the backlog is full; killing
        # the sender ends it; the VM goes on.
        stuck = host.listen(9000, backlog=0)
        vm.check(f"crosvm-vsock connect 2 9000 send {MIB32} > /tmp/stuck.out 2>&1 & "
                 "echo $! > /tmp/stuck.pid")
        time.sleep(3)
        self.assertEqual(vm.check("kill -0 $(cat /tmp/stuck.pid) && echo blocked").strip(),
                         "blocked")
        status, out = vm.sh("for i in 1 2 3; do crosvm-vsock connect 2 9000 send 1 "
                            "|| echo refused; done 2>&1")
        self.assertIn("refused", out)
        # (The sender is a child of the tool's process: both go; the shell here is PID 1.)
        vm.check("killall crosvm-vsock; wait; true")
        # The device gave up flushing to it (its timeout) and closed its end: accepted now,
        # the connection holds what fitted in the socket, then ends.
        c, _ = stuck.accept()
        n, _ = recv_all(c, timeout=60)
        self.assertGreater(n, 0)
        self.assertLess(n, MIB32)
        c.close()
        stuck.close()
        self.assertEqual(vm.check("echo alive").strip(), "alive")

        # Everything still works after all that.
        g.listen(5001, "echo")
        s, ok = host.connect(5001)
        s.sendall(b"still here")
        s.shutdown(socket.SHUT_WR)
        got = b""
        s.settimeout(60)
        while True:
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, b"still here")
        s.close()
        vm.check("wait")

        vm.send("poweroff -f\n")
        self.assertExit(vm, vmm.STATUS_STOP, 120)
        self.assertFalse(os.path.exists(path), "the socket file was left behind")


if __name__ == "__main__":
    unittest.main(verbosity=2)
