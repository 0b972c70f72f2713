"""The cluster-wide settings Patroni keeps in the DCS: what the pod wants (`pod.py dynamic-config`, also what a new
cluster bootstraps with), and the applier that makes an existing cluster's equal to it (`pod.py apply-dynamic-config`).
"""
import json
import time
import urllib.error
from typing import Any

from . import patroni_api
from .log import log
from .settings import Settings


def dynamic_config(s: Settings) -> dict[str, Any]:
    """Cluster-wide settings, kept in the DCS: bootstrapped once, then re-applied by apply-dynamic-config."""
    parameters: dict[str, Any] = {
        "wal_level": "replica",
        "hot_standby": "on",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "128MB",
        # A stopped standby's slot may hold back at most this much WAL before it is given up: bounds the disk.
        "max_slot_wal_keep_size": s.max_slot_wal_keep_size,
        "hot_standby_feedback": "on",
        "password_encryption": "scram-sha-256",
    }
    parameters.update(s.parameters)
    return {
        "ttl": s.ttl,
        "loop_wait": s.loop_wait,
        "retry_timeout": s.retry_timeout,
        # A replica more than 1 MB behind is not promoted automatically (the synchronous one never is behind).
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": s.synchronous_mode != "off",
        "synchronous_mode_strict": s.synchronous_mode == "strict",
        "synchronous_node_count": 1,
        # An unreachable Kubernetes API (a DOKS control plane upgrade) does not demote a leader that every
        # member can still reach over the REST API.
        "failsafe_mode": True,
        "postgresql": {
            "use_pg_rewind": True,
            "use_slots": True,
            "parameters": parameters,
        },
    }


def differences(desired: Any, actual: Any) -> Any:
    """The part of `desired` that `actual` does not already have (a PATCH body), or None. Values compare as text
    (Patroni may answer 10 for "10"); what `actual` has beyond `desired` is left alone."""
    if isinstance(desired, dict):
        out = {}
        for k, v in desired.items():
            d = differences(v, actual.get(k) if isinstance(actual, dict) else None)
            if d is not None:
                out[k] = d
        return out or None
    return None if str(desired) == str(actual) else desired


def apply_dynamic_config(s: Settings, timeout: int) -> int:
    """`pod.py apply-dynamic-config`: once this member's PostgreSQL runs, PATCHes the DCS settings that differ from
    dynamic_config(s). The exit status: 1 when Patroni did not answer within `timeout` seconds."""
    desired = dynamic_config(s)
    deadline = time.time() + timeout
    while True:
        try:
            # Only once this member's PostgreSQL runs, i.e. after a bootstrap has written the initial settings.
            if patroni_api.get(s, "/patroni").get("state") != "running":
                raise ValueError("PostgreSQL is not running yet")
            patch = differences(desired, patroni_api.get(s, "/config"))
            if patch is None:
                return 0
            patroni_api.request(s, "PATCH", "/config", patch, auth=True)
            log(f"applied cluster settings: {json.dumps(patch, sort_keys=True)}")
            return 0
        except (urllib.error.URLError, OSError, ValueError) as e:
            if time.time() > deadline:
                log(f"gave up applying cluster settings after {timeout}s: {e}")
                return 1
            time.sleep(2)
