#!/usr/bin/python3
"""Helpers of the Postgres pod's entrypoint (entrypoint.sh), in Python because Patroni already brings it.

    pod.py config                 print Patroni's configuration (JSON, which Patroni reads as YAML) from the environment
    pod.py dynamic-config         print the cluster-wide settings that live in the DCS (what `config` bootstraps with)
    pod.py check-dcs              fail with a clear message unless the Kubernetes API answers and allows what Patroni needs
    pod.py apply-dynamic-config   once the local Patroni answers, make the DCS settings equal `dynamic-config`
    pod.py wait-leader            block until the cluster has a leader other than this member and this member runs
    pod.py pre-stop               the pod's preStop hook: a leader with a healthy replica hands leadership over first
    pod.py env                    print `export NAME=value` lines of the settings the SQL scripts read (defaults applied)

Environment: see README.md next to this file. Every error names the variable, its value and what is allowed.
"""
import base64
import ipaddress
import json
import os
import re
import shlex
import ssl
import sys
import time
import urllib.error
import urllib.request

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SYNCHRONOUS_MODES = ("on", "off", "strict")


class ConfigError(Exception):
    pass


def log(message):
    sys.stderr.write("%s pod.py %s: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                               os.environ.get("POD_NAME", "?"), message))
    sys.stderr.flush()


def env(name, default=None, required=False):
    value = os.environ.get(name, "")
    if value == "":
        if required:
            raise ConfigError("%s is required" % name)
        return default
    return value


def env_int(name, default, low, high):
    raw = env(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw) or not low <= int(raw) <= high:
        raise ConfigError("%s=%r is not valid; expected an integer from %d to %d" % (name, raw, low, high))
    return int(raw)


def env_json(name, default):
    raw = env(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ConfigError("%s is not valid JSON (%s): %r" % (name, e, raw))


def env_cidrs(name, default):
    raw = env(name, default)
    cidrs = [c for c in re.split(r"[,\s]+", raw) if c]
    if not cidrs:
        raise ConfigError("%s is empty; expected one or more CIDRs such as 10.244.0.0/16" % name)
    for c in cidrs:
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise ConfigError("%s contains %r; expected CIDRs such as 10.244.0.0/16 or 127.0.0.1/32" % (name, c))
        if "/" not in c:
            raise ConfigError("%s contains %r; expected a CIDR with a prefix length, e.g. %s/32" % (name, c, c))
    return cidrs


def role_name(name, default):
    value = env(name, default)
    if '"' in value or "\n" in value or len(value) > 63:
        raise ConfigError("%s=%r is not valid; expected a role name of at most 63 characters without double quotes" % (name, value))
    return value


def settings():
    """Every input, validated once."""
    s = {}
    s["name"] = env("POD_NAME", required=True)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", s["name"]):
        raise ConfigError("POD_NAME=%r is not valid; expected a pod name such as postgres-0" % s["name"])
    s["scope"] = env("SCOPE", "postgres")
    s["namespace"] = env("POD_NAMESPACE", required=True)
    s["pod_ip"] = env("POD_IP", required=True)
    try:
        ipaddress.ip_address(s["pod_ip"])
    except ValueError:
        raise ConfigError("POD_IP=%r is not an IP address" % s["pod_ip"])
    s["listen"] = env("LISTEN_ADDRESS", "0.0.0.0")
    s["pgport"] = env_int("PGPORT", 5432, 1, 65535)
    s["api_port"] = env_int("API_PORT", 8008, 1, 65535)
    s["pgdata"] = env("PGDATA", required=True)
    if not s["pgdata"].startswith("/") or s["pgdata"].rstrip("/").count("/") < 2:
        raise ConfigError("PGDATA=%r is not valid; expected an absolute path to a subdirectory of the volume" % s["pgdata"])
    s["bin_dir"] = env("PG_BIN", "/usr/lib/postgresql/15/bin")
    s["run_dir"] = env("RUN_DIR", "/var/run/postgresql")
    s["socket_dir"] = env("SOCKET_DIR", s["run_dir"])
    s["superuser_password"] = env("SUPERUSER_PASSWORD", required=True)
    s["replication_user"] = role_name("REPLICATION_USER", "replicator")
    s["replication_password"] = env("REPLICATION_PASSWORD", required=True)
    s["app_user"] = role_name("APP_USER", "stateful-flask-user")
    s["app_database"] = env("APP_DATABASE", "stateful-flask-db")
    s["app_password"] = env("APP_PASSWORD", required=True)
    if s["replication_user"] in (s["app_user"], "postgres"):
        raise ConfigError("REPLICATION_USER=%r must differ from APP_USER and from the superuser postgres" % s["replication_user"])
    s["api_password"] = env("API_PASSWORD", required=True)
    s["pod_cidrs"] = env_cidrs("POD_CIDR", "10.244.0.0/16")
    s["client_cidrs"] = env_cidrs("CLIENT_CIDR", "0.0.0.0/0")
    s["synchronous_mode"] = env("SYNCHRONOUS_MODE", "on")
    if s["synchronous_mode"] not in SYNCHRONOUS_MODES:
        raise ConfigError("SYNCHRONOUS_MODE=%r is not valid; expected one of %s" % (s["synchronous_mode"], ", ".join(SYNCHRONOUS_MODES)))
    s["ttl"] = env_int("TTL", 7, 5, 300)
    s["loop_wait"] = env_int("LOOP_WAIT", 1, 1, 60)
    s["retry_timeout"] = env_int("RETRY_TIMEOUT", 3, 1, 120)
    # Patroni 3.0 does not check this itself; a leader could lose its lock while still retrying the API.
    if s["loop_wait"] + 2 * s["retry_timeout"] > s["ttl"]:
        raise ConfigError("TTL=%d, LOOP_WAIT=%d, RETRY_TIMEOUT=%d: LOOP_WAIT + 2 * RETRY_TIMEOUT must not exceed TTL"
                          % (s["ttl"], s["loop_wait"], s["retry_timeout"]))
    s["max_slot_wal_keep_size"] = env("MAX_SLOT_WAL_KEEP_SIZE", "1GB")
    if not re.fullmatch(r"-1|[1-9][0-9]*(MB|GB|TB)", s["max_slot_wal_keep_size"]):
        raise ConfigError("MAX_SLOT_WAL_KEEP_SIZE=%r is not valid; expected a size such as 512MB or 1GB (-1 = unlimited)"
                          % s["max_slot_wal_keep_size"])
    s["labels"] = env_json("KUBERNETES_LABELS", {"app": "postgres"})
    if not isinstance(s["labels"], dict) or not all(isinstance(v, str) for v in s["labels"].values()):
        raise ConfigError("KUBERNETES_LABELS must be a JSON object of strings, e.g. {\"app\": \"postgres\"}")
    s["scope_label"] = env("SCOPE_LABEL", "app.kubernetes.io/instance")
    s["kube_context"] = env("KUBECONFIG_CONTEXT")
    # A standby of the previous entrypoint, taken over while its old primary may still run (entrypoint.sh): it
    # must not promote itself, and its catalog has no `postgres` role yet (the old primary gets it when it is
    # adopted), so Patroni connects as the old bootstrap superuser, APP_USER, until then.
    s["adopting_standby"] = env("ADOPTING_STANDBY", "false") == "true"
    s["parameters"] = env_json("POSTGRES_PARAMETERS", {})
    s["tls_dir"] = env("TLS_DIR")
    s["lib_dir"] = os.path.dirname(os.path.abspath(__file__))
    return s


def dynamic_config(s):
    """Cluster-wide settings, kept in the DCS: bootstrapped once, then re-applied by apply-dynamic-config."""
    parameters = {
        "wal_level": "replica",
        "hot_standby": "on",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "128MB",
        # A stopped standby's slot may hold back at most this much WAL before it is given up: bounds the disk.
        "max_slot_wal_keep_size": s["max_slot_wal_keep_size"],
        "hot_standby_feedback": "on",
        "password_encryption": "scram-sha-256",
    }
    parameters.update(s["parameters"])
    return {
        "ttl": s["ttl"],
        "loop_wait": s["loop_wait"],
        "retry_timeout": s["retry_timeout"],
        # A replica more than 1 MB behind is not promoted automatically (the synchronous one never is behind).
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": s["synchronous_mode"] != "off",
        "synchronous_mode_strict": s["synchronous_mode"] == "strict",
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


def hba(s):
    """pg_hba.conf, written by Patroni on every start. Only the application role may connect from clients."""
    host = "hostssl" if s["tls_dir"] else "host"
    lines = [
        # The pod's own OS user (postgres) as the superuser, over the socket: Patroni, kubectl exec psql.
        "local all postgres peer",
    ]
    if s["adopting_standby"]:
        lines.append('local all "%s" scram-sha-256' % s["app_user"])
    lines.append("local all all reject")
    for cidr in s["pod_cidrs"]:
        lines.append('%s replication "%s" %s scram-sha-256' % (host, s["replication_user"], cidr))
        # pg_rewind and Patroni's checks between members connect as the superuser.
        lines.append("%s all postgres %s scram-sha-256" % (host, cidr))
    lines.append('host all "%s" all reject' % s["replication_user"])
    lines.append("host all postgres all reject")
    for cidr in s["client_cidrs"]:
        lines.append('%s "%s" "%s" %s scram-sha-256' % (host, s["app_database"], s["app_user"], cidr))
    if s["tls_dir"]:
        lines.append("hostnossl all all all reject")
    lines.append("host all all all reject")
    return lines


def patroni_config(s):
    api_auth = {"username": "patroni", "password": s["api_password"]}
    tls = {}
    if s["tls_dir"]:
        tls = {
            "ssl": "on",
            "ssl_cert_file": os.path.join(s["tls_dir"], "tls.crt"),
            "ssl_key_file": os.path.join(s["tls_dir"], "tls.key"),
            "ssl_ca_file": os.path.join(s["tls_dir"], "ca.crt"),
            "ssl_min_protocol_version": "TLSv1.2",
        }
    ssl_client = {"sslmode": "verify-ca", "sslrootcert": os.path.join(s["tls_dir"], "ca.crt")} if s["tls_dir"] else {}
    superuser = {"username": "postgres", "password": s["superuser_password"]}
    if s["adopting_standby"]:
        superuser = {"username": s["app_user"], "password": s["app_password"]}
    kubernetes = {
        "namespace": s["namespace"],
        "labels": s["labels"],
        "scope_label": s["scope_label"],
        "role_label": "role",
        # ConfigMaps hold the leader lock and the cluster state; Endpoints are deprecated since Kubernetes 1.33.
        "use_endpoints": False,
        "bypass_api_service": False,
        "pod_ip": s["pod_ip"],
    }
    if s["kube_context"]:
        kubernetes["context"] = s["kube_context"]
    config = {
        "scope": s["scope"],
        "name": s["name"],
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "kubernetes": kubernetes,
        "restapi": {
            "listen": "%s:%d" % (s["listen"], s["api_port"]),
            "connect_address": "%s:%d" % (s["pod_ip"], s["api_port"]),
            # Unsafe endpoints (switchover, config, restart) need these credentials; reads and probes do not.
            "authentication": api_auth,
        },
        "ctl": {"authentication": api_auth},
        "bootstrap": {
            "dcs": dynamic_config(s),
            "initdb": ["data-checksums", {"encoding": "UTF8"}, {"locale": "C.UTF-8"},
                       {"auth-local": "peer"}, {"auth-host": "scram-sha-256"}],
            "post_bootstrap": os.path.join(s["lib_dir"], "post-bootstrap.sh"),
        },
        "postgresql": {
            "listen": "%s:%d" % (s["listen"], s["pgport"]),
            "connect_address": "%s:%d" % (s["pod_ip"], s["pgport"]),
            "data_dir": s["pgdata"],
            "bin_dir": s["bin_dir"],
            "pgpass": os.path.join(s["run_dir"], "pgpass-%s" % s["name"]),
            "use_unix_socket": True,
            "authentication": {
                "superuser": dict(superuser, **ssl_client),
                "replication": dict({"username": s["replication_user"], "password": s["replication_password"]}, **ssl_client),
                "rewind": dict(superuser, **ssl_client),
            },
            "parameters": dict({"unix_socket_directories": s["socket_dir"], "port": s["pgport"]}, **tls),
            "pg_hba": hba(s),
            "create_replica_methods": ["basebackup"],
            "basebackup": [{"checkpoint": "fast"}],
            # Never delete a data directory on our own: a failed rewind leaves it for a person to look at.
            "remove_data_directory_on_rewind_failure": False,
            "remove_data_directory_on_diverged_timelines": False,
        },
        # No /dev/watchdog in a pod: a Patroni that dies takes the container, and with it the postmaster.
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": s["adopting_standby"], "noloadbalance": False, "clonefrom": False, "nosync": False},
    }
    return config


# ------------------------------------------------------------------------------------- Kubernetes API

def kube_client():
    """(base URL, ssl context, headers) for the Kubernetes API: in-pod credentials, else KUBECONFIG."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host and os.path.exists(os.path.join(SERVICE_ACCOUNT, "token")):
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        ctx = ssl.create_default_context(cafile=os.path.join(SERVICE_ACCOUNT, "ca.crt"))
        with open(os.path.join(SERVICE_ACCOUNT, "token")) as f:
            token = f.read().strip()
        return "https://%s:%s" % (host if ":" not in host else "[%s]" % host, port), ctx, {"Authorization": "Bearer " + token}
    path = os.environ.get("KUBECONFIG")
    if not path:
        raise ConfigError("no Kubernetes credentials: not in a pod (no service account token) and KUBECONFIG is not set")
    import yaml  # python3-yaml, a dependency of patroni
    with open(path) as f:
        kc = yaml.safe_load(f)
    name = env("KUBECONFIG_CONTEXT") or kc.get("current-context")
    context = next((c["context"] for c in kc.get("contexts", []) if c["name"] == name), None)
    if context is None:
        raise ConfigError("KUBECONFIG_CONTEXT=%r: no such context in %s" % (name, path))
    cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in kc["users"] if u["name"] == context["user"])
    tmp = os.path.join(env("RUN_DIR", "/tmp"), ".kube-%d" % os.getpid())
    os.makedirs(tmp, mode=0o700, exist_ok=True)

    def material(obj, key):
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
    return cluster["server"].rstrip("/"), ctx, headers


def check_dcs(s, timeout):
    """The Kubernetes API answers and lets this service account do what Patroni does every loop."""
    base, ctx, headers = kube_client()
    checks = [("list configmaps", "/api/v1/namespaces/%s/configmaps?limit=1" % s["namespace"]),
              ("list pods", "/api/v1/namespaces/%s/pods?limit=1" % s["namespace"])]
    deadline = time.time() + timeout
    while True:
        try:
            for what, path in checks:
                req = urllib.request.Request(base + path, headers=headers)
                urllib.request.urlopen(req, context=ctx, timeout=5).read()
            return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise ConfigError("the Kubernetes API at %s refused to %s in namespace %s (HTTP %d): Patroni's "
                                  "service account needs the Role in components/postgres-rbac.ts"
                                  % (base, what, s["namespace"], e.code))
            error = "HTTP %d on %s" % (e.code, what)
        except (urllib.error.URLError, OSError) as e:
            error = str(getattr(e, "reason", e))
        if time.time() > deadline:
            raise ConfigError("cannot reach the Kubernetes API at %s after %ds (%s). Patroni keeps the leader lock "
                              "there; PostgreSQL is not started without it and the data directory was not touched"
                              % (base, timeout, error))
        log("waiting for the Kubernetes API at %s: %s" % (base, error))
        time.sleep(2)


# --------------------------------------------------------------------------------------- Patroni REST

def rest(s, method, path, body=None, auth=False, timeout=5):
    url = "http://127.0.0.1:%d%s" % (s["api_port"], path)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(("patroni:%s" % s["api_password"]).encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")  # /switchover answers in plain text


def differences(desired, actual):
    """The part of `desired` that `actual` does not already have (a PATCH body), or None."""
    if isinstance(desired, dict):
        out = {}
        for k, v in desired.items():
            d = differences(v, actual.get(k) if isinstance(actual, dict) else None)
            if d is not None:
                out[k] = d
        return out or None
    return None if str(desired) == str(actual) else desired


def apply_dynamic_config(s, timeout):
    desired = dynamic_config(s)
    deadline = time.time() + timeout
    while True:
        try:
            # Only once this member's PostgreSQL runs, i.e. after a bootstrap has written the initial settings.
            if rest(s, "GET", "/patroni").get("state") != "running":
                raise ValueError("PostgreSQL is not running yet")
            patch = differences(desired, rest(s, "GET", "/config"))
            if patch is None:
                return
            rest(s, "PATCH", "/config", patch, auth=True)
            log("applied cluster settings: %s" % json.dumps(patch, sort_keys=True))
            return
        except (urllib.error.URLError, OSError, ValueError) as e:
            if time.time() > deadline:
                log("gave up applying cluster settings after %ds: %s" % (timeout, e))
                sys.exit(1)
            time.sleep(2)


def has_postgres_role(s):
    """Whether the local replica has replayed the adopted leader's `postgres` role (connects as APP_USER)."""
    import psycopg2  # python3-psycopg2, a dependency of patroni
    conn = psycopg2.connect(host=s["socket_dir"], port=s["pgport"], user=s["app_user"], password=s["app_password"],
                            dbname="postgres", connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres' AND rolsuper")
            return cur.fetchone()[0] == 1
    finally:
        conn.close()


def wait_leader(s):
    """Until another member leads, this one runs as its replica, and has the leader's `postgres` role."""
    last = None
    while True:
        try:
            cluster = rest(s, "GET", "/cluster")
            leaders = [m["name"] for m in cluster.get("members", []) if m.get("role") == "leader"]
            me = next((m for m in cluster.get("members", []) if m["name"] == s["name"]), {})
            if leaders and leaders[0] != s["name"] and me.get("state") == "running" and has_postgres_role(s):
                log("the cluster has a leader (%s) and this member runs as its replica" % leaders[0])
                return
            state = "leader=%s me=%s" % (leaders, me.get("state"))
        except Exception as e:  # noqa: BLE001 -- REST or PostgreSQL not answering yet: keep waiting
            state = str(e).strip()
        if state != last:
            log("waiting for a leader: %s" % state)
            last = state
        time.sleep(2)


def ordinal(name):
    m = re.search(r"-([0-9]+)$", name)
    return int(m.group(1)) if m else 1 << 30


def pre_stop(s, timeout):
    """A leader that is being stopped (rolling update, scale-down, node drain) moves the leadership to a running
    replica by a switchover, so the cluster changes leader cleanly instead of by a failover after ttl. The
    synchronous standby is the candidate when there is one (Patroni only allows it in synchronous mode), otherwise
    the replica with the lowest ordinal (it survives a scale-down longest)."""
    try:
        cluster = rest(s, "GET", "/cluster")
    except (urllib.error.URLError, OSError, ValueError) as e:
        log("pre-stop: Patroni does not answer (%s); nothing to hand over" % e)
        return
    members = cluster.get("members", [])
    me = next((m for m in members if m["name"] == s["name"]), None)
    if me is None or me.get("role") != "leader":
        return
    replicas = [m for m in members if m["name"] != s["name"] and m.get("state") in ("running", "streaming")
                and m.get("role") in ("sync_standby", "replica")]
    sync = [m for m in replicas if m.get("role") == "sync_standby"]
    pool = sync or sorted(replicas, key=lambda m: ordinal(m["name"]))
    if not pool:
        log("pre-stop: this leader has no running replica; stopping without a switchover")
        return
    candidate = pool[0]["name"]
    log("pre-stop: switching over from %s to %s before stopping" % (s["name"], candidate))
    try:
        rest(s, "POST", "/switchover", {"leader": s["name"], "candidate": candidate}, auth=True, timeout=timeout)
    except urllib.error.HTTPError as e:
        log("pre-stop: switchover refused (HTTP %d: %s); Patroni's shutdown releases the leader key instead"
            % (e.code, e.read().decode(errors="replace").strip()))
        return
    except (urllib.error.URLError, OSError, ValueError) as e:
        log("pre-stop: switchover failed (%s)" % e)
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if rest(s, "GET", "/patroni").get("role") != "master":
                log("pre-stop: %s leads now" % candidate)
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        s = settings()
        cmd = argv[1]
        if cmd == "config":
            json.dump(patroni_config(s), sys.stdout, indent=1, sort_keys=True)
        elif cmd == "dynamic-config":
            json.dump(dynamic_config(s), sys.stdout, indent=1, sort_keys=True)
        elif cmd == "check-dcs":
            check_dcs(s, int(argv[2]) if len(argv) > 2 else 60)
        elif cmd == "apply-dynamic-config":
            apply_dynamic_config(s, int(argv[2]) if len(argv) > 2 else 600)
        elif cmd == "env":
            for name, key in (("APP_USER", "app_user"), ("APP_DATABASE", "app_database"), ("REPLICATION_USER", "replication_user"),
                              ("PGPORT", "pgport"), ("PG_BIN", "bin_dir"), ("RUN_DIR", "run_dir")):
                sys.stdout.write("export %s=%s\n" % (name, shlex.quote(str(s[key]))))
        elif cmd == "pre-stop":
            pre_stop(s, 60)
        elif cmd == "wait-leader":
            wait_leader(s)
        else:
            sys.stderr.write("unknown command %r\n%s" % (cmd, __doc__))
            return 2
    except ConfigError as e:
        log("FATAL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
