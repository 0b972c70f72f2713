"""A small Kubernetes API client: the pod's service account, else KUBECONFIG (the tests, a developer's machine).

Credentials are read again for every request: a projected service-account token is rotated while the pod runs.
"""
import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from . import timestamps
from .log import log
from .errors import ConfigError
from .settings import Settings

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Connection:
    base: str
    context: ssl.SSLContext
    headers: dict[str, str]


def connect(environ: Mapping[str, str] = os.environ) -> Connection:
    """The API's URL, TLS context and headers: in-pod credentials, else KUBECONFIG (and KUBECONFIG_CONTEXT)."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    if host and os.path.exists(os.path.join(SERVICE_ACCOUNT, "token")):
        port = environ.get("KUBERNETES_SERVICE_PORT", "443")
        ctx = ssl.create_default_context(cafile=os.path.join(SERVICE_ACCOUNT, "ca.crt"))
        with open(os.path.join(SERVICE_ACCOUNT, "token")) as f:
            token = f.read().strip()
        return Connection(f"https://{host if ':' not in host else f'[{host}]'}:{port}", ctx, {"Authorization": "Bearer " + token})
    path = environ.get("KUBECONFIG")
    if not path:
        raise ConfigError("no Kubernetes credentials: not in a pod (no service account token) and KUBECONFIG is not set")
    import yaml  # type: ignore[import]  # python3-yaml, a dependency of patroni
    with open(path) as f:
        kc = yaml.safe_load(f)
    name = environ.get("KUBECONFIG_CONTEXT") or kc.get("current-context")
    context = next((c["context"] for c in kc.get("contexts", []) if c["name"] == name), None)
    if context is None:
        raise ConfigError(f"KUBECONFIG_CONTEXT={name!r}: no such context in {path}")
    cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in kc["users"] if u["name"] == context["user"])
    # Inline certificates and keys become files (ssl reads files only), private to this process.
    tmp = os.path.join(environ.get("RUN_DIR") or "/tmp", f".kube-{os.getpid()}")
    os.makedirs(tmp, mode=0o700, exist_ok=True)

    def material(obj: dict, key: str) -> Optional[str]:
        if obj.get(key + "-data"):
            p = os.path.join(tmp, key)
            with open(p, "wb") as f:
                f.write(base64.b64decode(obj[key + "-data"]))
            return p
        return obj.get(key)
    ctx = ssl.create_default_context(cafile=material(cluster, "certificate-authority"))
    cert, key = material(user, "client-certificate"), material(user, "client-key")
    if cert:
        ctx.load_cert_chain(cert, key)
    headers = {"Authorization": "Bearer " + user["token"]} if user.get("token") else {}
    return Connection(cluster["server"].rstrip("/"), ctx, headers)


def request(method: str, path: str, body: Optional[Any] = None) -> Any:
    """One API call; a PATCH is a JSON merge patch. Raises urllib's errors (HTTPError for an error status)."""
    c = connect()
    data = None if body is None else json.dumps(body).encode()
    ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
    req = urllib.request.Request(c.base + path, data=data, method=method, headers=dict(c.headers, **{"Content-Type": ctype}))
    with urllib.request.urlopen(req, context=c.context, timeout=10) as r:
        return json.loads(r.read() or b"null")


def warning_event(s: Settings, reason: str, message: str, component: str) -> None:
    """A Warning event on this member's pod, as `kubectl get events` shows it; `component` names what reports it."""
    now = timestamps.utc()
    request("POST", f"/api/v1/namespaces/{s.namespace}/events", {
        "metadata": {"generateName": f"{s.name}-{component.rsplit('-', 1)[-1]}-"},
        "involvedObject": {"kind": "Pod", "name": s.name, "namespace": s.namespace, "apiVersion": "v1"},
        "reason": reason, "message": message, "type": "Warning", "firstTimestamp": now, "lastTimestamp": now,
        "count": 1, "source": {"component": component},
    })


def check_dcs(s: Settings, timeout: int) -> None:
    """`pod.py check-dcs`: the API answers and lets this service account do what Patroni does every loop."""
    c = connect()
    checks = [("list configmaps", f"/api/v1/namespaces/{s.namespace}/configmaps?limit=1"),
              ("list pods", f"/api/v1/namespaces/{s.namespace}/pods?limit=1")]
    deadline = time.time() + timeout
    while True:
        what = checks[0][0]
        try:
            for what, path in checks:  # noqa: B007 (what names the failing check in the except clauses)
                req = urllib.request.Request(c.base + path, headers=c.headers)
                urllib.request.urlopen(req, context=c.context, timeout=5).read()
            return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise ConfigError(f"the Kubernetes API at {c.base} refused to {what} in namespace {s.namespace} (HTTP {e.code}): Patroni's "
                                  "service account needs the Role in components/patroni-rbac.ts") from e
            error = f"HTTP {e.code} on {what}"
        except (urllib.error.URLError, OSError) as e:
            error = str(getattr(e, "reason", e))
        if time.time() > deadline:
            raise ConfigError(f"cannot reach the Kubernetes API at {c.base} after {timeout}s ({error}). Patroni keeps the leader lock "
                              "there; PostgreSQL is not started without it and the data directory was not touched")
        log(f"waiting for the Kubernetes API at {c.base}: {error}")
        time.sleep(2)
