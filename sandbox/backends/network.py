"""How runs get their network namespace: the ``fresh_network`` option of the isolating backends.

Every run starts in a network namespace in which nothing an earlier run did is observable: no
socket (TIME_WAIT included), unchanged SNMP/netstat counters, unchanged device counters
(``zygote.linux.net_fingerprint``). By default (``clean``) a worker's runs share one namespace
until a run changes it; the next run then gets a new one, and so does the worker. A namespace
costs ~1.5 ms of CPU to make and about as much to tear down, a tenth of a small Python run, and
most runs never touch the network. What ``clean`` leaves observable is one bit: namespace ids
(``/proc/self/ns/net``) come from a host-wide allocator, so a run could tell whether its network
namespace is older than its pid namespace, i.e. whether an earlier run on its worker used the
network. ``fresh_network=True`` (``run``) closes that too, making one for every run.
"""

from __future__ import annotations

from rlvr.errors import ConfigError


def network_mode(fresh_network: bool) -> str:
    """The zygote's ``netns`` setting for the ``fresh_network`` option."""
    if not isinstance(fresh_network, bool):
        raise ConfigError("fresh_network", f"must be True or False, got {fresh_network!r}")
    return "run" if fresh_network else "clean"


__all__ = ["network_mode"]
