"""The code the Postgres pod runs; pod.py next to this package is its command line (cli.py dispatches).

One module per concern (README.md next to this package has the same table):

    settings.py          the environment, validated once into frozen dataclasses (Settings, BackupSettings)
    environment.py       typed reads of one variable each, errors naming variable, value and what is allowed
    errors.py            ConfigError: what a command reports as `FATAL: <message>` (exit 1)
    log.py, timestamps.py  the log line; UTC timestamps written and read
    patroni_config.py    Patroni's configuration file, pg_hba.conf, the archive and restore commands
    cluster_settings.py  the DCS settings the pod wants, and the applier that makes a cluster's equal to them
    pgbackrest.py        pgBackRest's configuration file, command line and one-line errors
    kube.py              a small Kubernetes API client, and the check that the API answers (check-dcs)
    patroni_api.py       the local Patroni's REST API
    local_db.py          the one connection helper for the member's own PostgreSQL
    switchover.py        the preStop hook's handover to a replica
    sync_guard.py        the workaround for Patroni 3.0.2's stuck synchronous standby
    schedule.py          the full-backup schedule (standard cron in UTC, croniter) and when a backup is overdue
    backup_agent.py      the backup agent on the leader; backup-status and full-backup
    archive_check.py     the archive check (no hole, nothing damaged) and the restore bootstrap
    bootstrap_check.py   no new cluster (initdb or restore) over a repository that already holds one
    adoption.py          REMOVABLE: a standby of the entrypoint before Patroni, until a Patroni leader exists
    cli.py               the command line: usage, the table of commands, exit statuses

archive_push.py (PostgreSQL's archive_command) stays a script of its own next to pod.py: it takes its settings on
its command line and imports nothing from this package.
"""
