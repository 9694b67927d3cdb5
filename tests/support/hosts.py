"""Hosts of the test suite's own: Linux network namespaces joined by veth links to a bridge.

`make_hosts(n)` makes n namespaces ("hosts") with addresses 10.77.0.1 ... 10.77.0.n on an interface `eth0` each,
`lo` up, and a bridge in a namespace of its own (the "switch"), so nothing is added to the machine's own network:
traffic stays between those namespaces. `Hosts.popen(i, command)` runs a command on host i (`ip netns exec`), so
several hosts run at once; `Hosts.remove()` kills what still runs there and removes the namespaces. Names carry
the test process's id (and a counter), so parallel sessions do not collide; namespaces left by a session that
died are removed by the next one. The `two_hosts` fixture skips with the reason where namespaces cannot be made
(not root, no `ip`, no namespace support).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PREFIX = "mssl"  # namespace names: mssl<pid>x<counter>h<i> (hosts), mssl<pid>x<counter>s (switch)
SUBNET = "10.77.0"
INTERFACE = "eth0"  # the host side of each link (namespaces have their own interface names)
_counter = itertools.count()


def address(index: int) -> str:
    """The address of host `index` (0-based): 10.77.0.1 for the first."""
    return f"{SUBNET}.{index + 1}"


def _ip(*args: str) -> None:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")


def namespaces() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    """Processes running in namespace `name`."""
    listing = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=30).stdout
    return [int(pid) for pid in listing.split()]


def kill_namespace(name: str) -> None:
    """SIGKILL every process in namespace `name` (a host that disappears)."""
    for pid in namespace_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def delete_namespace(name: str) -> None:
    kill_namespace(name)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


def remove_stale() -> None:
    """Remove the namespaces of sessions whose process is gone (a session killed before its clean-up)."""
    for name in namespaces():
        match = re.fullmatch(rf"{PREFIX}(\d+)x\d+(h\d+|s)", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            delete_namespace(name)


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` to make network-namespace hosts"
    if os.geteuid() != 0:
        return "needs root to make network-namespace hosts (ip netns add)"
    probe = f"{PREFIX}{os.getpid()}probe"
    run = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        return f"cannot make a network namespace here: {run.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=30)
    return None


@dataclass
class Hosts:
    """n namespaces on one bridge; host i has address(i) on INTERFACE."""

    names: list[str]
    switch: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [address(i) for i in range(len(self.names))]

    def popen(self, index: int, command: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: object):
        """Start `command` on host `index` (a subprocess.Popen: returns at once)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.names[index], *command], env=env, **kwargs)
        self.processes.append(process)
        return process

    def run(self, index: int, command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run `command` on host `index` to its end."""
        return subprocess.run(["ip", "netns", "exec", self.names[index], *command], **kwargs)

    def kill(self, index: int) -> None:
        """SIGKILL every process of host `index`."""
        kill_namespace(self.names[index])

    def set_link(self, index: int, up: bool) -> None:
        """Cut (or restore) host `index`'s link: nothing it sends leaves it, nothing reaches it."""
        _ip("-n", self.names[index], "link", "set", INTERFACE, "up" if up else "down")

    def remove(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for name in [*self.names, self.switch]:
            delete_namespace(name)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)


def make_hosts(count: int) -> Hosts:
    """`count` hosts joined by a bridge; removed again if making them fails half way."""
    remove_stale()
    stem = f"{PREFIX}{os.getpid()}x{next(_counter)}"
    hosts = Hosts([f"{stem}h{i}" for i in range(count)], f"{stem}s")
    try:
        _ip("netns", "add", hosts.switch)
        _ip("-n", hosts.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", hosts.switch, "link", "set", "br0", "up")
        for i, name in enumerate(hosts.names):
            _ip("netns", "add", name)
            _ip("-n", hosts.switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", INTERFACE, "netns", name)
            _ip("-n", hosts.switch, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", hosts.switch, "link", "set", f"p{i}", "up")
            _ip("-n", name, "addr", "add", f"{address(i)}/24", "dev", INTERFACE)
            _ip("-n", name, "link", "set", INTERFACE, "up")
            _ip("-n", name, "link", "set", "lo", "up")
    except BaseException:
        hosts.remove()
        raise
    return hosts


@pytest.fixture
def two_hosts() -> Iterator[Hosts]:
    """Two hosts, 10.77.0.1 and 10.77.0.2, removed after the test (whatever its outcome)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    hosts = make_hosts(2)
    try:
        yield hosts
    finally:
        hosts.remove()
