"""The workers' sockets: each binds the one port with SO_REUSEPORT, and a socket without it is refused there."""

from __future__ import annotations

import socket

import pytest

from ledger.http.workers import reuseport_available, reuseport_socket

pytestmark = pytest.mark.skipif(not reuseport_available(), reason="no SO_REUSEPORT on this platform")


def test_two_workers_listen_on_one_port_and_the_parent_reservation_takes_no_connection():
    reserved = reuseport_socket("127.0.0.1", 0)
    port = reserved.getsockname()[1]
    first, second = reuseport_socket("127.0.0.1", port), reuseport_socket("127.0.0.1", port)
    try:
        for s in (first, second):
            s.listen(8)
            s.settimeout(2)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        with pytest.raises(OSError):
            reserved.accept()  # bound, not listening: the kernel gives it nothing
        plain = socket.socket()
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # another program cannot take the port meanwhile
        plain.close()
    finally:
        for s in (reserved, first, second):
            s.close()


def test_a_port_taken_by_another_program_is_a_clean_error_naming_the_address():
    from ledger.errors import ConfigError
    from ledger.http.workers import run_workers

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"--listen 127.0.0.1:{port}: cannot bind"):
            run_workers("127.0.0.1", port, 2, {}, "{}")
    finally:
        taken.close()
