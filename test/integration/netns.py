"""Network namespaces for the networking tests and benchmarks (standard library only).

Every frame these tests send stays inside a namespace the test creates (its TAP devices and
every address it uses) or on that namespace's loopback: crosvm runs inside it too (`ip netns
exec`), so its TAPs and its user-mode network's sockets are there. The namespace and its TAPs
are removed at the end.
"""

import fcntl
import hashlib
import os
import random
import struct
import subprocess
import time

TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

# A TCP sink: accepts one connection, prints its byte count and MD5 when it ends.
SINK = r"""
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
h = hashlib.md5()
n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest(), flush=True)
"""

# A TCP source: connects and sends N bytes of the seeded pseudo-random stream, then EOF.
SOURCE = r"""
import random, socket, sys, time
data = random.Random(int(sys.argv[4])).randbytes(int(sys.argv[3]))
deadline = time.monotonic() + 60
while True:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=600)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
s.recv(1)
"""

# Opens a TAP by name without IFF_VNET_HDR as fd 3 (inherited), then runs the command.
TAPFD_EXEC = r"""
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH22x", sys.argv[1].encode(), 0x0002 | 0x1000))
if fd != 3:
    os.dup2(fd, 3)
os.set_inheritable(3, True)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def seeded(nbytes, seed):
    """The bytes SOURCE sends, and their MD5."""
    data = random.Random(seed).randbytes(nbytes)
    return data, hashlib.md5(data).hexdigest()


class Namespace:
    """A network namespace of our own: `with Namespace("tag") as ns:`."""

    def __init__(self, tag):
        self.name = f"crosvm-{tag}-{os.getpid()}"
        self.taps = []
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            self.run("ip", "link", "set", "lo", "up")
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def run(self, *cmd, check=True, timeout=120, input=None):
        return subprocess.run(self.prefix() + [str(c) for c in cmd], check=check,
                              capture_output=True, timeout=timeout, input=input)

    def popen(self, *cmd, **kw):
        return subprocess.Popen(self.prefix() + [str(c) for c in cmd], **kw)

    def tap(self, name, cidr=None, vnet_hdr=True, multi_queue=False, mtu=None):
        """A persistent TAP in the namespace, up, with cidr (e.g. "10.11.1.1/24") on it."""
        args = ["ip", "tuntap", "add", "dev", name, "mode", "tap"]
        if vnet_hdr:
            args.append("vnet_hdr")
        if multi_queue:
            args.append("multi_queue")
        self.run(*args)
        self.taps.append(name)
        if cidr:
            self.run("ip", "addr", "add", cidr, "dev", name)
        if mtu:
            self.run("ip", "link", "set", name, "mtu", mtu)
        self.run("ip", "link", "set", name, "up")

    def wait_listening(self, port, timeout=30):
        """Until something listens on TCP port in the namespace; returns the `ss` lines."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.run("ss", "-Hltn", f"sport = :{port}").stdout.decode()
            if out.strip():
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}")
            time.sleep(0.1)

    def close(self):
        for t in self.taps:
            self.run("ip", "link", "del", t, check=False)
        self.taps = []
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def sink(ns, addr, port):
    """Starts SINK in ns on addr:port; returns the process once it listens."""
    p = ns.popen("python3", "-c", SINK, addr, port, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        raise RuntimeError(f"the sink did not start: {line!r}")
    return p


def sink_result(p, timeout=900):
    out, _ = p.communicate(timeout=timeout)
    count, digest = out.split()
    return int(count), digest


def host_to_guest(ns, vm, guest_ip, port, nbytes, seed, path="/tmp/f", cpu=None):
    """Sends nbytes from the host to the guest, which keeps them in path; (seconds, ok)."""
    _, digest = seeded(nbytes, seed)
    pin = f"taskset -c {cpu} " if cpu is not None else ""
    vm.check(f"rm -f {path} {path}.md5; ({pin}nc -l -p {port} | tee {path} | md5sum "
             f"> {path}.md5 &)")
    wait_guest_listening(vm, port)
    t0 = time.monotonic()
    ns.run("python3", "-c", SOURCE, guest_ip, port, nbytes, seed, timeout=900)
    took = time.monotonic() - t0
    got = ""
    for _ in range(600):
        got = vm.check(f"cat {path}.md5 2>/dev/null; true").split()
        if got:
            break
        time.sleep(0.1)
    return took, bool(got) and got[0] == digest


def guest_to_host(ns, vm, host_ip, port, path, cpu=None):
    """Sends the guest's file at path to a sink on the host; (seconds, bytes, md5)."""
    p = sink(ns, host_ip, port)
    pin = f"taskset -c {cpu} " if cpu is not None else ""
    t0 = time.monotonic()
    try:
        vm.check(f"{pin}nc {host_ip} {port} < {path}", timeout=900)
    except Exception:
        p.kill()
        raise
    took = time.monotonic() - t0
    count, digest = sink_result(p)
    return took, count, digest


def wait_guest_listening(vm, port, timeout=30):
    """Until the guest listens on TCP port (busybox netstat)."""
    deadline = time.monotonic() + timeout
    while f":{port} " not in vm.check("netstat -ltn"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the guest does not listen on port {port}")
        time.sleep(0.1)


def tap_without_vnet_hdr(tap):
    """The command prefix that runs a command with tap opened as fd 3, without vnet headers."""
    return ["python3", "-c", TAPFD_EXEC, tap]


def open_tap(name, vnet_hdr=False):
    """Opens an existing TAP (in the current namespace): its fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    return fd
