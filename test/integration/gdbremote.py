"""A GDB remote serial protocol client for the tests (standard library only).

It speaks to crosvm's --gdb server the way gdb does (acknowledged packets, 0x03 to interrupt)
but lets a test send anything, well formed or not, and see every byte that comes back.
"""

import re
import socket
import time
import xml.etree.ElementTree as ET


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame(payload):
    payload = payload.encode() if isinstance(payload, str) else payload
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xff)


def escape(data):
    """Binary data as X packets carry it."""
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes([0x7d, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


class ProtocolError(AssertionError):
    pass


class Remote:
    def __init__(self, port, timeout=60):
        """Connects, retrying until the server listens (or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def read_byte(self, timeout=60):
        while not self.buf:
            self._fill(timeout)
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def read_packet(self, timeout=60):
        """The next packet's payload (bytes), checksum checked and acknowledged."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(rb"\$([^#$]*)#([0-9a-fA-F]{2})", self.buf, re.S)
            if m:
                if self.buf[:m.start()].strip(b"+"):
                    raise ProtocolError(f"unexpected bytes before a packet: {self.buf!r}")
                payload = m.group(1)
                if sum(payload) & 0xff != int(m.group(2), 16):
                    raise ProtocolError(f"bad checksum in {m.group(0)!r}")
                self.buf = self.buf[m.end():]
                self.send_raw(b"+")
                return payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no packet; have {self.buf!r}")
            self._fill(left)

    def expect_ack(self, timeout=60):
        b = self.read_byte(timeout)
        if b != b"+":
            raise ProtocolError(f"expected '+', got {b!r} (then {self.buf!r})")

    def send(self, payload):
        """Sends a packet that the server must acknowledge (no reply awaited)."""
        self.send_raw(frame(payload))
        self.expect_ack()

    def ask(self, payload, timeout=60):
        """One request, one reply (bytes)."""
        self.send(payload)
        return self.read_packet(timeout)

    def ask_str(self, payload, timeout=60):
        return self.ask(payload, timeout).decode("latin-1")

    def interrupt(self):
        self.send_raw(b"\x03")

    def nothing_more(self, wait=0.5):
        """True if the server sends nothing within `wait` seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    # ---- registers ----

    def target_xml(self):
        data, off = b"", 0
        while True:
            r = self.ask(f"qXfer:features:read:target.xml:{off:x},400")
            if r[:1] not in (b"m", b"l"):
                raise ProtocolError(f"qXfer: {r!r}")
            data += unescape(r[1:])
            off = len(data)
            if r[:1] == b"l":
                return data.decode()

    def register_layout(self):
        """{name: (regnum, byte offset in g, size)} from the target description."""
        root = ET.fromstring(self.target_xml())
        layout, off = {}, 0
        for reg in root.iter("reg"):
            size = int(reg.get("bitsize")) // 8
            layout[reg.get("name")] = (int(reg.get("regnum")), off, size)
            off += size
        return layout


def unescape(data):
    out, i = bytearray(), 0
    while i < len(data):
        if data[i] == 0x7d:
            out.append(data[i + 1] ^ 0x20)
            i += 2
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def le(hexstr):
    """A little-endian hex register value as an int."""
    return int.from_bytes(bytes.fromhex(hexstr), "little")


def le_hex(value, size):
    return value.to_bytes(size, "little").hex()
