"""tests/support/hosts.py: network-namespace hosts reach each other, and only each other, and leave nothing behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import hosts
from tests.support.hosts import Hosts, two_hosts  # noqa: F401 (the fixture)

LISTEN = (
    "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind(('0.0.0.0', 29999)); s.listen(); print('listening', flush=True); c, peer = s.accept(); "
    "print(peer[0], c.recv(16).decode(), flush=True)"
)
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 29999), timeout=10).sendall(b'hello')"


def test_two_hosts_reach_each_other_on_their_own_addresses(two_hosts: Hosts) -> None:  # noqa: F811
    assert two_hosts.addresses == ["10.77.0.1", "10.77.0.2"]
    server = two_hosts.popen(0, [sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "listening"
    two_hosts.run(1, [sys.executable, "-c", CONNECT, "10.77.0.1"], check=True, timeout=30)
    assert server.communicate(timeout=30)[0].split() == ["10.77.0.2", "hello"]
    for index in range(2):  # lo is up, and the route to the other host leaves by eth0
        route = two_hosts.run(index, ["ip", "-o", "route", "get", f"10.77.0.{2 - index}"], capture_output=True)
        assert b"dev eth0" in route.stdout
        assert b"UP" in two_hosts.run(index, ["ip", "-o", "link", "show", "lo"], capture_output=True).stdout


def test_the_machine_itself_gets_no_address_or_route_and_removal_leaves_nothing() -> None:
    if reason := hosts.unavailable():
        pytest.skip(reason)
    made = hosts.make_hosts(2)
    try:
        assert set(made.names) | {made.switch} <= set(hosts.namespaces())
        assert "10.77.0." not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert "10.77.0." not in subprocess.run(["ip", "-o", "route"], capture_output=True, text=True).stdout
        made.set_link(1, up=False)  # a cut link: host 1 is unreachable
        cut = made.run(0, [sys.executable, "-c", CONNECT, "10.77.0.2"], capture_output=True, timeout=60)
        assert cut.returncode != 0
        sleeper = made.popen(1, ["sleep", "600"])
    finally:
        made.remove()
    assert not set(made.names) & set(hosts.namespaces()) and made.switch not in hosts.namespaces()
    assert sleeper.poll() is not None  # what ran on a host is gone with it


def test_where_hosts_cannot_be_made_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosts.shutil, "which", lambda name: None)
    assert hosts.unavailable() == "needs iproute2's `ip` to make network-namespace hosts"
    monkeypatch.setattr(hosts.shutil, "which", lambda name: "/usr/sbin/ip")
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 1000)
    assert hosts.unavailable() == "needs root to make network-namespace hosts (ip netns add)"
