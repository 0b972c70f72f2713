"""The preStop hook (`pod.py pre-stop`): a leader hands over to a replica before its pod stops.

A leader that is being stopped (rolling update, scale-down, node drain) moves the leadership to a running replica by
a switchover, so the cluster changes leader cleanly instead of by a failover after ttl.
"""
import re
import time
import urllib.error
from typing import Any, Optional

from . import kube, patroni_api
from .log import log
from .errors import ConfigError
from .settings import Settings


def ordinal(name: str) -> int:
    """A StatefulSet pod's ordinal (postgres-2 -> 2); a name without one sorts last."""
    m = re.search(r"-([0-9]+)$", name)
    return int(m.group(1)) if m else 1 << 30


def candidates(members: list[dict[str, Any]], name: str, synchronous_mode: str) -> list[dict[str, Any]]:
    """The members of Patroni's /cluster that member `name` may hand over to, best first: the synchronous standby
    (Patroni only allows it in synchronous mode), else, asynchronous, the running replicas by ordinal (the lowest
    survives a scale-down longest)."""
    replicas = [m for m in members if m["name"] != name and m.get("state") in ("running", "streaming")
                and m.get("role") in ("sync_standby", "replica")]
    if synchronous_mode != "off":
        return [m for m in replicas if m.get("role") == "sync_standby"]
    return sorted(replicas, key=lambda m: ordinal(m["name"]))


def surviving_ordinals(s: Settings) -> Optional[list[int]]:
    """The other ordinals the StatefulSet keeps (below its spec.replicas), or None outside a StatefulSet."""
    m = re.fullmatch(r"(.+)-([0-9]+)", s.name)
    if not m:
        return None
    try:
        sts = kube.request("GET", f"/apis/apps/v1/namespaces/{s.namespace}/statefulsets/{m.group(1)}")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise
    return [i for i in range(int(sts["spec"].get("replicas", 1))) if i != int(m.group(2))]


def pre_stop(s: Settings, timeout: int, wait_for_replica: int = 50) -> None:
    """Switches over to the best candidate, then waits up to `timeout` seconds for it to lead.

    When no replica runs yet but the StatefulSet keeps other members (one pod restarts in a rolling update while a
    scale-down removes this one), it waits up to `wait_for_replica` seconds for one: stopping without a handover
    would leave the DCS naming this member as the last leader, and in synchronous mode no other member may then
    promote (Patroni cannot know it has every commit), so the cluster would stay without a leader until this member
    came back."""
    deadline = time.time() + wait_for_replica
    survivors = None
    waiting = False
    while True:
        try:
            cluster = patroni_api.get(s, "/cluster")
        except (urllib.error.URLError, OSError, ValueError) as e:
            log(f"pre-stop: Patroni does not answer ({e}); nothing to hand over")
            return
        members = cluster.get("members", [])
        me = next((m for m in members if m["name"] == s.name), None)
        if me is None or me.get("role") != "leader":
            return
        pool = candidates(members, s.name, s.synchronous_mode)
        if pool:
            break
        if survivors is None:
            try:
                survivors = surviving_ordinals(s) or []
            except (urllib.error.URLError, OSError, ValueError, ConfigError) as e:
                log(f"pre-stop: cannot read the StatefulSet ({e})")
                survivors = []
        if not survivors or time.time() >= deadline:
            log(f"pre-stop: this leader has no running {'synchronous ' if s.synchronous_mode != 'off' else ''}replica; "
                "stopping without a switchover")
            return
        if not waiting:
            log(f"pre-stop: no replica to hand over to yet; waiting up to {wait_for_replica} s for one of the members that stay "
                f"(ordinals {', '.join(map(str, survivors))})")
            waiting = True
        time.sleep(1)
    candidate = pool[0]["name"]
    log(f"pre-stop: switching over from {s.name} to {candidate} before stopping")
    try:
        patroni_api.request(s, "POST", "/switchover", {"leader": s.name, "candidate": candidate}, auth=True, timeout=timeout)
    except urllib.error.HTTPError as e:
        log(f"pre-stop: switchover refused (HTTP {e.code}: {e.read().decode(errors='replace').strip()}); "
            "Patroni's shutdown releases the leader key instead")
        return
    except (urllib.error.URLError, OSError, ValueError) as e:
        log(f"pre-stop: switchover failed ({e})")
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if patroni_api.get(s, "/patroni").get("role") != "master":
                log(f"pre-stop: {candidate} leads now")
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)
