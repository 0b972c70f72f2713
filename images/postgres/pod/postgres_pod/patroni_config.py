"""Patroni's configuration file, rendered from the settings (`pod.py config`): the member, its DCS, its REST API,
pg_hba.conf, and the archive and restore commands that connect PostgreSQL to pgBackRest. The cluster-wide part it
bootstraps with is cluster_settings.dynamic_config.
"""
import os
import sys
from typing import Any, Optional

from . import adoption, pgbackrest, timestamps
from .cluster_settings import dynamic_config
from .settings import BackupSettings, Settings


def archive_parameters(s: Settings) -> dict[str, Any]:
    """Local (per member) parameters: continuous archiving of the leader's WAL through pgBackRest."""
    b = s.backup
    if not b:
        return {}
    return {
        "archive_mode": "on",
        # A segment is archived at least every archive_timeout: the most a lost cluster can lose.
        "archive_timeout": b.archive_timeout,
        # archive_push.py: pgBackRest's archive-push, and a divergent copy of an abandoned timeline's segment resolved
        # instead of blocking every later segment (docs/backups.md, "Failovers and the archive"). Its settings are on
        # its command line: it needs none of the pod's secrets.
        "archive_command": f"{sys.executable} {os.path.join(s.lib_dir, 'archive_push.py')} --config={b.conf} --stanza={b.stanza} "
                           f"--pgdata={s.pgdata} --bin={s.bin_dir} --run-dir={s.run_dir} --synchronous-mode={s.synchronous_mode} %p",
    }


def restore_command(b: BackupSettings, path: Optional[str] = None) -> str:
    """PostgreSQL's restore_command: a segment from the archive (this cluster's, or `path`, a restore's source)."""
    return " ".join(pgbackrest.command(b, "archive-get", "%f", '"%p"', path=path))


def hba(s: Settings) -> list[str]:
    """pg_hba.conf, written by Patroni on every start. Only the application role may connect from clients."""
    host = "hostssl" if s.tls_dir else "host"
    lines = [
        # The pod's own OS user (postgres) as the superuser, over the socket: Patroni, kubectl exec psql.
        "local all postgres peer",
    ]
    lines += adoption.standby_hba(s)
    lines.append("local all all reject")
    # Loopback too: Patroni reads its own server's timeline and LSN over a replication connection to localhost
    # (get_replica_timeline); refused, a replica logs an error every loop and cannot take part in a leader race.
    for cidr in ["127.0.0.1/32", "::1/128"] + [c for c in s.pod_cidrs if c not in ("127.0.0.1/32", "::1/128")]:
        lines.append(f'{host} replication "{s.replication_user}" {cidr} scram-sha-256')
        # pg_rewind and Patroni's checks between members connect as the superuser.
        lines.append(f"{host} all postgres {cidr} scram-sha-256")
    lines.append(f'host all "{s.replication_user}" all reject')
    lines.append("host all postgres all reject")
    for cidr in s.client_cidrs:
        lines.append(f'{host} "{s.app_database}" "{s.app_user}" {cidr} scram-sha-256')
    if s.tls_dir:
        lines.append("hostnossl all all all reject")
    lines.append("host all all all reject")
    return lines


def patroni_config(s: Settings) -> dict[str, Any]:
    """Patroni's configuration file (`pod.py config`, JSON, which Patroni reads as YAML)."""
    api_auth = {"username": "patroni", "password": s.api_password}
    tls: dict[str, str] = {}
    if s.tls_dir:
        tls = {
            "ssl": "on",
            "ssl_cert_file": os.path.join(s.tls_dir, "tls.crt"),
            "ssl_key_file": os.path.join(s.tls_dir, "tls.key"),
            "ssl_ca_file": os.path.join(s.tls_dir, "ca.crt"),
            "ssl_min_protocol_version": "TLSv1.2",
        }
    ssl_client = {"sslmode": "verify-ca", "sslrootcert": os.path.join(s.tls_dir, "ca.crt")} if s.tls_dir else {}
    superuser = adoption.standby_superuser(s) or {"username": "postgres", "password": s.superuser_password}
    kubernetes: dict[str, Any] = {
        "namespace": s.namespace,
        "labels": s.labels,
        "scope_label": s.scope_label,
        "role_label": "role",
        # ConfigMaps hold the leader lock and the cluster state; Endpoints are deprecated since Kubernetes 1.33.
        "use_endpoints": False,
        "bypass_api_service": False,
        "pod_ip": s.pod_ip,
    }
    if s.kube_context:
        kubernetes["context"] = s.kube_context
    config: dict[str, Any] = {
        "scope": s.scope,
        "name": s.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "kubernetes": kubernetes,
        "restapi": {
            "listen": f"{s.listen}:{s.api_port}",
            "connect_address": f"{s.pod_ip}:{s.api_port}",
            # Unsafe endpoints (switchover, config, restart) need these credentials; reads and probes do not.
            "authentication": api_auth,
        },
        "ctl": {"authentication": api_auth},
        "bootstrap": {
            "dcs": dynamic_config(s),
            "initdb": ["data-checksums", {"encoding": "UTF8"}, {"locale": "C.UTF-8"},
                       {"auth-local": "peer"}, {"auth-host": "scram-sha-256"}],
            "post_bootstrap": os.path.join(s.lib_dir, "post-bootstrap.sh"),
        },
        "postgresql": {
            "listen": f"{s.listen}:{s.pgport}",
            "connect_address": f"{s.pod_ip}:{s.pgport}",
            "data_dir": s.pgdata,
            "bin_dir": s.bin_dir,
            "pgpass": os.path.join(s.run_dir, f"pgpass-{s.name}"),
            "use_unix_socket": True,
            "authentication": {
                "superuser": dict(superuser, **ssl_client),
                "replication": dict({"username": s.replication_user, "password": s.replication_password}, **ssl_client),
                "rewind": dict(superuser, **ssl_client),
            },
            "parameters": dict({"unix_socket_directories": s.socket_dir, "port": s.pgport}, **tls, **archive_parameters(s)),
            "pg_hba": hba(s),
            "create_replica_methods": ["basebackup"],
            "basebackup": [{"checkpoint": "fast"}],
            # Never delete a data directory on our own: a failed rewind leaves it for a person to look at.
            "remove_data_directory_on_rewind_failure": False,
            "remove_data_directory_on_diverged_timelines": False,
        },
        # No /dev/watchdog in a pod: a Patroni that dies takes the container, and with it the postmaster.
        "watchdog": {"mode": "off"},
        # An adopted standby must not promote itself next to its old primary (adoption.py).
        "tags": {"nofailover": s.adopting_standby, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }
    b = s.backup
    if b:
        # A replica that fell behind the leader's WAL fetches what it misses from the archive.
        config["postgresql"]["recovery_conf"] = {"restore_command": restore_command(b)}
        if b.restore_from:
            recovery = {
                "restore_command": restore_command(b, b.restore_from),
                "recovery_target_action": "promote",
                "recovery_target_timeline": "latest",
            }
            if b.restore_target:
                # A numeric UTC offset: PostgreSQL reads recovery_target_time before it loads time zone abbreviations,
                # so "Z" is refused there.
                recovery["recovery_target_time"] = timestamps.parse(b.restore_target).isoformat(sep=" ")
            # A new cluster is made from the backup instead of initdb (only on the member that initialises it;
            # the others clone it as usual).
            config["bootstrap"]["method"] = "pgbackrest"
            config["bootstrap"]["pgbackrest"] = {
                "command": f"{sys.executable} {os.path.join(s.lib_dir, 'pod.py')} restore",
                "keep_existing_recovery_conf": False,
                "no_params": True,
                "recovery_conf": recovery,
            }
    return config
