"""The local Patroni's REST API (127.0.0.1:API_PORT)."""
import base64
import json
import urllib.request
from typing import Any, Optional

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
