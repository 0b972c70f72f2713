"""The local Patroni's REST API (127.0.0.1:API_PORT), and the applier that keeps the DCS settings equal the pod's."""
import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any, Optional

from .log import log
from .patroni_config import dynamic_config
from .settings import Settings


def request(s: Settings, method: str, path: str, body: Optional[Any] = None, auth: bool = False, timeout: float = 5) -> Any:
    """One call; the answer as JSON, or as text (/switchover answers in plain text). `auth` for the unsafe endpoints."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{s.api_port}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"patroni:{s.api_password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")


def get(s: Settings, path: str) -> Any:
    return request(s, "GET", path)


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
            if get(s, "/patroni").get("state") != "running":
                raise ValueError("PostgreSQL is not running yet")
            patch = differences(desired, get(s, "/config"))
            if patch is None:
                return 0
            request(s, "PATCH", "/config", patch, auth=True)
            log(f"applied cluster settings: {json.dumps(patch, sort_keys=True)}")
            return 0
        except (urllib.error.URLError, OSError, ValueError) as e:
            if time.time() > deadline:
                log(f"gave up applying cluster settings after {timeout}s: {e}")
                return 1
            time.sleep(2)
