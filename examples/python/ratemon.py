"""Check ratemon's deny flag with one Redis call and report requests over
NATS, with Python's standard library only.

The README's "Other languages" section shows the same logic with redis-py
and nats-py, which most servers will use. This file speaks the two wire
protocols itself (a few lines each) so that CI can test the contract
without installing packages: test_ratemon.py runs it against a real daemon.
"""

import json
import math
import re
import socket
import time

_ESCAPE = re.compile(r"[{}|=%\x00-\x1f\x7f]")


def escape_value(v: str) -> str:
    """Percent-encode { } | = % and control characters, upper-case hex."""
    return _ESCAPE.sub(lambda m: "%%%02X" % ord(m.group()), v)


def limit_key(*pairs: tuple[str, str]) -> str:
    """limit_key(("client", "acme"), ("route", "POST /login"))."""
    return "|".join(f"{field}={escape_value(value)}" for field, value in pairs)


def retry_after(redis, key: str, prefix: str = "ratemon") -> int | None:
    """One PTTL of the deny flag: None when allowed, else Retry-After seconds."""
    ms = redis.pttl(f"{prefix}:deny:{{{key}}}")
    if ms == -2:
        return None  # no flag: allowed
    if ms == -1:
        return 3600  # a flag without TTL: denied until removed
    return max(1, math.ceil(ms / 1000))


def event(client: str, service: str, **fields) -> bytes:
    """One request event as JSON (see the README's Events table)."""
    return json.dumps({"client": client, "service": service, "ts": int(time.time() * 1000), **fields}).encode()


class Redis:
    """The smallest RESP client that can send PTTL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379):
        self.sock = socket.create_connection((host, port), timeout=1)
        self.buf = self.sock.makefile("rb")

    def command(self, *args: str):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self):
        line = self.buf.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.buf.read(n + 2)[:-2]
        raise RuntimeError(f"unexpected reply {line!r}")

    def pttl(self, key: str) -> int:
        return self.command("PTTL", key)


class NATS:
    """The smallest NATS client that can publish: CONNECT, PUB, PING."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4222):
        self.sock = socket.create_connection((host, port), timeout=1)
        self.buf = self.sock.makefile("rb")
        if not self.buf.readline().startswith(b"INFO "):
            raise RuntimeError("not a NATS server")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"ratemon-python"}\r\n')

    def publish(self, subject: str, payload: bytes):
        self.sock.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))

    def flush(self):
        self.sock.sendall(b"PING\r\n")
        while (line := self.buf.readline()) != b"PONG\r\n":
            if line.startswith(b"-ERR"):
                raise RuntimeError(line.decode().strip())
