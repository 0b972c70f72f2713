"""Puts images/postgres/pod (the directory the image copies to /usr/local/lib/stateful-flask-postgres) on sys.path,
so the tests import the package the way pod.py does."""
import os
import sys

POD_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pod"))
if POD_DIR not in sys.path:
    sys.path.insert(0, POD_DIR)

# The environment the StatefulSet gives every pod (components/postgres-pod.ts), without defaults.
BASE_ENV = {
    "POD_NAME": "postgres-1", "POD_NAMESPACE": "postgres", "POD_IP": "10.244.0.7", "PGDATA": "/var/lib/postgresql/data/pgdata",
    "SUPERUSER_PASSWORD": "su", "REPLICATION_PASSWORD": "repl", "APP_PASSWORD": "app", "API_PASSWORD": "api",
}
# A repository in S3-compatible storage (what the program sets when backups are on).
BACKUP_ENV = {
    "BACKUP_S3_BUCKET": "stateful-flask-dev-pgbackrest", "BACKUP_S3_ENDPOINT": "fra1.digitaloceanspaces.com",
    "BACKUP_S3_REGION": "fra1", "BACKUP_PATH": "/stateful-flask/dev", "BACKUP_S3_KEY": "key",
    "BACKUP_S3_KEY_SECRET": "key-secret", "BACKUP_CIPHER_PASS": "cipher-pass",
}
