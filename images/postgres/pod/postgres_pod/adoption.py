"""Adoption of a standby of the entrypoint before Patroni. REMOVABLE once no volume of that entrypoint is left.

During the rolling update that brings Patroni, the StatefulSet replaces the highest ordinal first: a standby gets
Patroni while its old primary still runs and takes writes (README.md next to this package, "Adopting volumes").
entrypoint.sh then sets ADOPTING_STANDBY=true, and until a Patroni leader exists and this member replicates its
`postgres` role, the member runs with nofailover (it cannot promote itself next to the old primary) and Patroni
connects as the old bootstrap superuser, APP_USER (this standby's catalog has no `postgres` role yet).

To remove adoption, delete together: this module and its three uses (patroni_config.py: standby_superuser,
standby_hba and the nofailover tag; cli.py: the `wait-leader` command), Settings.adopting_standby, and outside the
package entrypoint.sh's step 3, prepare-primary.sh, patroni-roles.sql and tests/adoption.spec.ts.
"""
import time
from typing import Optional

from . import local_db, patroni_api
from .log import log
from .settings import Settings


def standby_superuser(s: Settings) -> Optional[dict[str, str]]:
    """The superuser Patroni connects as while the standby is adopted, or None (then it is `postgres`)."""
    return {"username": s.app_user, "password": s.app_password} if s.adopting_standby else None


def standby_hba(s: Settings) -> list[str]:
    """pg_hba.conf lines for the old bootstrap superuser over the socket, while the standby is adopted."""
    return [f'local all "{s.app_user}" scram-sha-256'] if s.adopting_standby else []


def has_postgres_role(s: Settings) -> bool:
    """Whether the local replica has replayed the adopted leader's `postgres` role (connects as APP_USER)."""
    with local_db.cursor(s, user=s.app_user, password=s.app_password) as cur:
        cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'postgres' AND rolsuper")
        return cur.fetchone()[0] == 1


def wait_leader(s: Settings) -> None:
    """`pod.py wait-leader`: until another member leads, this one runs as its replica, and has the leader's
    `postgres` role. entrypoint.sh then renders the configuration without adoption and reloads Patroni."""
    last = None
    while True:
        try:
            cluster = patroni_api.get(s, "/cluster")
            leaders = [m["name"] for m in cluster.get("members", []) if m.get("role") == "leader"]
            me: dict = next((m for m in cluster.get("members", []) if m["name"] == s.name), {})
            if leaders and leaders[0] != s.name and me.get("state") == "running" and has_postgres_role(s):
                log(f"the cluster has a leader ({leaders[0]}) and this member runs as its replica")
                return
            state = f"leader={leaders} me={me.get('state')}"
        except Exception as e:  # noqa: BLE001 -- REST or PostgreSQL not answering yet: keep waiting
            state = str(e).strip()
        if state != last:
            log(f"waiting for a leader: {state}")
            last = state
        time.sleep(2)
