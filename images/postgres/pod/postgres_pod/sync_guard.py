"""The sync guard (`pod.py sync-guard`): a workaround for Patroni 3.0.2, on the leader, unless SYNCHRONOUS_MODE=off.

Patroni 3.0.2 (Debian bookworm's) compares the synchronous standby its leader would pick with the one the DCS
records, not with synchronous_standby_names: when the setting names a standby and that standby goes away within the
2 s before the DCS is written (a scale-down right after a switchover), both are empty afterwards and the setting
stays, so every commit waits forever (wait event SyncRep) for a member that no longer exists (found by the e2e suite;
the same upstream as patroni/patroni#3468, rewritten in 3.1). When that state lasts over two checks, the guard
records in the DCS sync key (<scope>-sync) the standbys the server really waits for, which keeps Patroni's invariant
(what the DCS names, the leader's setting names too); Patroni's next loop then sees its pick differ, takes them out
of the DCS and the setting, and the commits go through. No other state is touched. Removable with Patroni >= 3.1.
"""
import os
import re
import time
from typing import Collection, Optional

from . import kube, local_db, patroni_api
from .log import log
from .environment import Environment
from .settings import Settings


def standby_names(value: str) -> list[str]:
    """The member names in a synchronous_standby_names value: `"a"`, `a, b`, `2 ("a","b")`, `ANY 1 (a)`; '*' as is."""
    value = value.strip()
    m = re.match(r'^(?:(?:FIRST|ANY)\s+)?\d+\s*\((.*)\)$', value, re.IGNORECASE | re.DOTALL)
    if m:
        value = m.group(1)
    names = []
    for part in value.split(","):
        part = part.strip()
        if part.startswith('"') and part.endswith('"') and len(part) >= 2:
            part = part[1:-1].replace('""', '"')
        if part:
            names.append(part)
    return names


def sync_stale(ssn_names: list[str], streaming: Collection[str], dcs_sync: Collection[str]) -> list[str]:
    """The synchronous standbys the server waits for that can never answer: named in synchronous_standby_names,
    not streaming, and not what the DCS records (so Patroni 3.0.2, which compares its pick with the DCS only, never
    takes them out). Empty in strict mode ('*' is the setting, not a member)."""
    if ssn_names == ["*"]:
        return []
    return sorted(n for n in ssn_names if n not in streaming and n not in dcs_sync)


def sync_guard(s: Settings) -> None:
    """Checks every SYNC_GUARD_INTERVAL seconds, forever; acts on the second check that finds the same stale standbys."""
    interval = Environment(os.environ).integer("SYNC_GUARD_INTERVAL", 5, 1, 3600)
    path = f"/api/v1/namespaces/{s.namespace}/configmaps/{s.scope}-sync"
    suspect: Optional[list[str]] = None
    last_error = None
    while True:
        time.sleep(interval)
        try:
            me = patroni_api.get(s, "/patroni")
            if me.get("role") != "master" or me.get("state") != "running":
                suspect = None
                continue
            with local_db.cursor(s) as cur:
                cur.execute("SHOW synchronous_standby_names")
                ssn = cur.fetchone()[0]
                cur.execute("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
                streaming = {r[0] for r in cur.fetchall()}
            cm = kube.request("GET", path)
            annotations = (cm.get("metadata") or {}).get("annotations") or {}
            dcs_sync = [n for n in (annotations.get("sync_standby") or "").split(",") if n]
            stale = sync_stale(standby_names(ssn), streaming, dcs_sync)
            if not stale or annotations.get("leader") not in (None, "", s.name):
                suspect = None
                continue
            if suspect != stale:
                # Patroni waits up to 2 s after setting a standby before it records it: act on the next check only.
                suspect = stale
                continue
            log(f"sync-guard: synchronous_standby_names is {ssn}, but {', '.join(stale)} {'is' if len(stale) == 1 else 'are'} not "
                f"streaming and the DCS records {dcs_sync or 'none'}: commits wait for a standby that is gone; recording it in "
                f"{s.scope}-sync so that Patroni takes it out")
            kube.request("PATCH", path, {"metadata": {
                "resourceVersion": cm["metadata"]["resourceVersion"],
                "annotations": {"leader": s.name, "sync_standby": ",".join(sorted(set(dcs_sync) | set(stale)))},
            }})
            suspect = None
            last_error = None
        except Exception as e:  # noqa: BLE001 -- the guard outlives every error; each is logged, once
            if str(e) != last_error:
                log(f"sync-guard: {e}")
            last_error = str(e)
