"""The pod's environment (README.md next to the package), validated once into frozen settings.

Every bad value raises ConfigError with a message that names the variable, its value and what is allowed; the
command line prints it as `FATAL: <message>` and exits 1 before anything is touched.
"""
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from . import schedule
from .environment import Environment
from .errors import ConfigError

SYNCHRONOUS_MODES = ("on", "off", "strict")
POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
REPOSITORY_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
TARGET_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")
SLOT_WAL_SIZE = re.compile(r"-1|[1-9][0-9]*(MB|GB|TB)")
# The directory that holds pod.py, archive_push.py and the shell scripts: what Patroni's configuration points at.
LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class BackupSettings:
    """pgBackRest's repository in S3-compatible object storage, and the restore this cluster starts from, if any."""

    bucket: str
    endpoint: str
    region: str
    path: str
    uri_style: str
    key: str
    key_secret: str
    cipher_pass: str
    schedule: str
    retention_full: int
    archive_timeout: int
    io_timeout: int
    ca_file: Optional[str]
    port: int
    stanza: str
    restore_from: Optional[str]
    restore_target: Optional[str]
    conf: str


@dataclass(frozen=True)
class Settings:
    """Every input of the pod's commands. `backup` is None when BACKUP_S3_BUCKET is unset."""

    name: str
    scope: str
    namespace: str
    pod_ip: str
    listen: str
    pgport: int
    api_port: int
    pgdata: str
    bin_dir: str
    run_dir: str
    socket_dir: str
    superuser_password: str
    replication_user: str
    replication_password: str
    app_user: str
    app_database: str
    app_password: str
    api_password: str
    pod_cidrs: tuple[str, ...]
    client_cidrs: tuple[str, ...]
    synchronous_mode: str
    ttl: int
    loop_wait: int
    retry_timeout: int
    max_slot_wal_keep_size: str
    labels: dict[str, str]
    scope_label: str
    kube_context: Optional[str]
    # A standby of the previous entrypoint, taken over while its old primary may still run (adoption.py).
    adopting_standby: bool
    parameters: dict[str, Any]
    tls_dir: Optional[str]
    backup: Optional[BackupSettings]
    lib_dir: str = LIB_DIR


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Every input, validated once, in the order the checks have always run (the first bad value is reported)."""
    env = Environment(environ)
    name = env.required("POD_NAME")
    if not POD_NAME.fullmatch(name):
        raise ConfigError(f"POD_NAME={name!r} is not valid; expected a pod name such as postgres-0")
    scope = env.text("SCOPE", "postgres")
    namespace = env.required("POD_NAMESPACE")
    pod_ip = env.required("POD_IP")
    try:
        ipaddress.ip_address(pod_ip)
    except ValueError:
        raise ConfigError(f"POD_IP={pod_ip!r} is not an IP address") from None
    listen = env.text("LISTEN_ADDRESS", "0.0.0.0")
    pgport = env.integer("PGPORT", 5432, 1, 65535)
    api_port = env.integer("API_PORT", 8008, 1, 65535)
    pgdata = env.required("PGDATA")
    if not pgdata.startswith("/") or pgdata.rstrip("/").count("/") < 2:
        raise ConfigError(f"PGDATA={pgdata!r} is not valid; expected an absolute path to a subdirectory of the volume")
    bin_dir = env.text("PG_BIN", "/usr/lib/postgresql/15/bin")
    run_dir = env.text("RUN_DIR", "/var/run/postgresql")
    socket_dir = env.text("SOCKET_DIR", run_dir)
    superuser_password = env.required("SUPERUSER_PASSWORD")
    replication_user = env.role_name("REPLICATION_USER", "replicator")
    replication_password = env.required("REPLICATION_PASSWORD")
    app_user = env.role_name("APP_USER", "stateful-flask-user")
    app_database = env.text("APP_DATABASE", "stateful-flask-db")
    app_password = env.required("APP_PASSWORD")
    if replication_user in (app_user, "postgres"):
        raise ConfigError(f"REPLICATION_USER={replication_user!r} must differ from APP_USER and from the superuser postgres")
    api_password = env.required("API_PASSWORD")
    pod_cidrs = env.cidrs("POD_CIDR", "10.244.0.0/16")
    client_cidrs = env.cidrs("CLIENT_CIDR", "0.0.0.0/0")
    synchronous_mode = env.text("SYNCHRONOUS_MODE", "on")
    if synchronous_mode not in SYNCHRONOUS_MODES:
        raise ConfigError(f"SYNCHRONOUS_MODE={synchronous_mode!r} is not valid; expected one of {', '.join(SYNCHRONOUS_MODES)}")
    ttl = env.integer("TTL", 7, 5, 300)
    loop_wait = env.integer("LOOP_WAIT", 1, 1, 60)
    retry_timeout = env.integer("RETRY_TIMEOUT", 3, 1, 120)
    # Patroni 3.0 does not check this itself; a leader could lose its lock while still retrying the API.
    if loop_wait + 2 * retry_timeout > ttl:
        raise ConfigError(f"TTL={ttl}, LOOP_WAIT={loop_wait}, RETRY_TIMEOUT={retry_timeout}: LOOP_WAIT + 2 * RETRY_TIMEOUT must not exceed TTL")
    max_slot_wal_keep_size = env.text("MAX_SLOT_WAL_KEEP_SIZE", "1GB")
    if not SLOT_WAL_SIZE.fullmatch(max_slot_wal_keep_size):
        raise ConfigError(f"MAX_SLOT_WAL_KEEP_SIZE={max_slot_wal_keep_size!r} is not valid; expected a size such as 512MB or 1GB (-1 = unlimited)")
    labels = env.json("KUBERNETES_LABELS", {"app": "postgres"})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ConfigError('KUBERNETES_LABELS must be a JSON object of strings, e.g. {"app": "postgres"}')
    return Settings(
        name=name, scope=scope, namespace=namespace, pod_ip=pod_ip, listen=listen, pgport=pgport, api_port=api_port,
        pgdata=pgdata, bin_dir=bin_dir, run_dir=run_dir, socket_dir=socket_dir, superuser_password=superuser_password,
        replication_user=replication_user, replication_password=replication_password, app_user=app_user,
        app_database=app_database, app_password=app_password, api_password=api_password, pod_cidrs=pod_cidrs,
        client_cidrs=client_cidrs, synchronous_mode=synchronous_mode, ttl=ttl, loop_wait=loop_wait,
        retry_timeout=retry_timeout, max_slot_wal_keep_size=max_slot_wal_keep_size, labels=labels,
        scope_label=env.text("SCOPE_LABEL", "app.kubernetes.io/instance"),
        kube_context=env.get("KUBECONFIG_CONTEXT"),
        adopting_standby=env.get("ADOPTING_STANDBY") == "true",
        parameters=env.json("POSTGRES_PARAMETERS", {}),
        tls_dir=env.get("TLS_DIR"),
        backup=load_backup(env, scope, name, run_dir),
    )


def load_backup(env: Environment, stanza: str, name: str, run_dir: str) -> Optional[BackupSettings]:
    """pgBackRest's repository; None when BACKUP_S3_BUCKET is unset (then a restore cannot be asked for)."""
    bucket = env.get("BACKUP_S3_BUCKET")
    if bucket is None:
        if env.get("RESTORE_FROM_PATH"):
            raise ConfigError("RESTORE_FROM_PATH is set but BACKUP_S3_BUCKET is not: a restore reads the repository in that bucket")
        return None
    b = BackupSettings(
        bucket=bucket,
        endpoint=env.required("BACKUP_S3_ENDPOINT"),
        region=env.required("BACKUP_S3_REGION"),
        path=env.required("BACKUP_PATH"),
        uri_style=env.text("BACKUP_S3_URI_STYLE", "host"),
        key=env.required("BACKUP_S3_KEY"),
        key_secret=env.required("BACKUP_S3_KEY_SECRET"),
        cipher_pass=env.required("BACKUP_CIPHER_PASS"),
        schedule=env.text("BACKUP_SCHEDULE", "0 3 * * *"),
        retention_full=env.integer("BACKUP_RETENTION_FULL", 7, 1, 100),
        archive_timeout=env.integer("ARCHIVE_TIMEOUT", 60, 10, 3600),
        io_timeout=env.integer("BACKUP_IO_TIMEOUT", 60, 1, 3600),
        ca_file=env.get("BACKUP_S3_CA_FILE"),
        port=env.integer("BACKUP_S3_PORT", 443, 1, 65535),
        stanza=stanza,
        restore_from=env.get("RESTORE_FROM_PATH"),
        restore_target=env.get("RESTORE_TARGET_TIME"),
        conf=os.path.join(run_dir, f"pgbackrest-{name}.conf"),
    )
    for key, value in (("BACKUP_PATH", b.path), ("RESTORE_FROM_PATH", b.restore_from)):
        if value is not None and not REPOSITORY_PATH.fullmatch(value):
            raise ConfigError(f"{key}={value!r} is not valid; expected an absolute path such as /stateful-flask/dev")
    if b.restore_from is not None and b.restore_from.rstrip("/") == b.path.rstrip("/"):
        raise ConfigError(f"RESTORE_FROM_PATH={b.restore_from!r} is BACKUP_PATH: a restored cluster archives to a path of its own")
    if b.restore_target is not None and (b.restore_from is None or not TARGET_TIME.fullmatch(b.restore_target)):
        raise ConfigError(f"RESTORE_TARGET_TIME={b.restore_target!r} is not valid; expected a time with its UTC offset, such as "
                          "2026-11-24T14:01:00Z, and RESTORE_FROM_PATH")
    if b.uri_style not in ("host", "path"):
        raise ConfigError(f"BACKUP_S3_URI_STYLE={b.uri_style!r} is not valid; expected host or path")
    reason = schedule.problem(b.schedule)
    if reason:
        raise ConfigError(f"BACKUP_SCHEDULE={b.schedule!r} is not valid; {reason}")
    return b
