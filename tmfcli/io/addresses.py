"""Dask scheduler addresses (``--scheduler``, ``executor.scheduler``): parsed before anything
connects, and probed with a plain socket that gives up after a few seconds.

An address is ``[protocol://]host:port`` with protocol tcp (the default), tls, ws, wss or ucx,
a host name, an IPv4 address or an IPv6 address in brackets, and a port in 1..65535
(``tcp://10.0.0.5:8786``, ``10.0.0.5:8786``, ``tls://[::1]:8786``).
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass

PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
EXAMPLE = "tcp://10.0.0.5:8786"
_ADDRESS = re.compile(r"(?:(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://)?"
                      r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*"
                   r"[A-Za-z0-9_])?)*\.?")


class AddressError(ValueError):
    """An address that is not ``[protocol://]host:port``: ``str()`` says what is wrong."""


@dataclass(frozen=True)
class Address:
    protocol: str
    host: str  # without the brackets of an IPv6 address
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"


def parse(text: str) -> Address:
    """The address ``text``, or ``AddressError`` saying what is wrong with it."""
    text = text.strip()
    if not text:
        raise AddressError("is empty")
    match = _ADDRESS.fullmatch(text)
    if match is None:
        if "://" in text and text.split("://", 1)[0] not in PROTOCOLS:
            raise AddressError(f"has the unknown protocol '{text.split('://', 1)[0][:20]}'")
        raise AddressError("is not a scheduler address (protocol://host:port)")
    protocol = (match["protocol"] or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise AddressError(f"has the unknown protocol '{protocol[:20]}'")
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            raise AddressError(f"has an invalid IPv6 address '{host[:40]}'") from None
    elif not _HOST.fullmatch(host) or len(host) > 253:
        raise AddressError(f"has an invalid host name '{host[:40]}'")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise AddressError(f"has port {port}, outside 1..65535")
    return Address(protocol, host, port)


def probe(address: Address, timeout_s: float) -> str | None:
    """None when something accepts a TCP connection at ``address`` within ``timeout_s``
    seconds (name resolution included), else why not ("connection refused", "no answer
    within 3 s", "unknown host")."""
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((address.host, address.port), timeout=timeout_s).close()
        except socket.gaierror:
            outcome.append("unknown host")
        except TimeoutError:
            outcome.append(f"no answer within {timeout_s:g} s")
        except OSError as error:
            outcome.append((error.strerror or type(error).__name__).lower())
        else:
            outcome.append(None)

    # a thread, because name resolution has no timeout of its own
    worker = threading.Thread(target=connect, daemon=True, name="tmf-scheduler-probe")
    worker.start()
    worker.join(timeout_s + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout_s:g} s"
