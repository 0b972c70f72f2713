/**
 * pod.py's configuration of Patroni, from the environment the StatefulSet gives the pod: no servers, only the
 * JSON Patroni reads and the errors a bad environment gets.
 */
import * as assert from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { installedVersions, pinnedPackages } from "../../../scripts/images/packages";
import { PYTHON } from "./harness";

const POD_PY = path.join(__dirname, "..", "pod", "pod.py");
const BASE: Record<string, string> = {
    POD_NAME: "postgres-1",
    POD_NAMESPACE: "postgres",
    POD_IP: "10.244.0.7",
    PGDATA: "/var/lib/postgresql/data/pgdata",
    SUPERUSER_PASSWORD: "su",
    REPLICATION_PASSWORD: "repl",
    APP_PASSWORD: "app",
    API_PASSWORD: "api",
};

function pod(
    args: string[],
    env: Record<string, string | undefined> = {},
): { status: number; stdout: string; stderr: string } {
    const merged = Object.fromEntries(
        Object.entries({ PATH: "/usr/bin:/bin", ...BASE, ...env }).filter(([, v]) => v !== undefined),
    ) as Record<string, string>;
    const r = spawnSync(PYTHON, [POD_PY, ...args], { encoding: "utf8", env: merged });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function config(env: Record<string, string | undefined> = {}): any {
    const r = pod(["config"], env);
    assert.strictEqual(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
}

function fails(env: Record<string, string | undefined>, message: string): void {
    const r = pod(["config"], env);
    assert.strictEqual(r.status, 1, r.stdout);
    assert.ok(r.stderr.includes(`FATAL: ${message}`), `expected "${message}" in:\n${r.stderr}`);
}

describe("Postgres pod: Patroni's configuration from the environment (pod.py)", () => {
    it("runs on exactly the Debian packages the image installs (images/postgres/packages.txt): what is tested is what ships", () => {
        const pinned = pinnedPackages(path.join(__dirname, "..", "packages.txt"));
        assert.strictEqual(pinned["postgresql-15"], "15.20-0+deb12u1");
        assert.strictEqual(pinned.patroni, "3.0.2-1");
        assert.strictEqual(pinned.pgbackrest, "2.45-1");
        assert.strictEqual(pinned["python3-croniter"], "1.3.5-3");
        assert.deepStrictEqual(installedVersions(Object.keys(pinned)), pinned);
    });

    it("names the member after the pod and keeps the DCS in ConfigMaps of the pod's namespace, found by the pods' labels", () => {
        const c = config();
        assert.strictEqual(c.name, "postgres-1");
        assert.strictEqual(c.scope, "postgres");
        assert.deepStrictEqual(c.kubernetes, {
            namespace: "postgres",
            labels: { app: "postgres" },
            scope_label: "app.kubernetes.io/instance",
            role_label: "role",
            use_endpoints: false,
            bypass_api_service: false,
            pod_ip: "10.244.0.7",
        });
        assert.strictEqual(c.postgresql.connect_address, "10.244.0.7:5432");
        assert.strictEqual(c.restapi.connect_address, "10.244.0.7:8008");
        assert.strictEqual(c.postgresql.data_dir, "/var/lib/postgresql/data/pgdata");
    });

    it("bootstraps with data checksums, UTF-8, and the app database from post_bootstrap", () => {
        const c = config();
        assert.deepStrictEqual(c.bootstrap.initdb, [
            "data-checksums",
            { encoding: "UTF8" },
            { locale: "C.UTF-8" },
            { "auth-local": "peer" },
            { "auth-host": "scram-sha-256" },
        ]);
        assert.strictEqual(path.basename(c.bootstrap.post_bootstrap), "post-bootstrap.sh");
    });

    it("defaults to synchronous replication, pg_rewind, failsafe mode, slots and the fast-failover timing", () => {
        const dcs = config().bootstrap.dcs;
        assert.deepStrictEqual([dcs.ttl, dcs.loop_wait, dcs.retry_timeout], [7, 1, 3]);
        assert.strictEqual(dcs.synchronous_mode, true);
        assert.strictEqual(dcs.synchronous_mode_strict, false);
        assert.strictEqual(dcs.synchronous_node_count, 1);
        assert.strictEqual(dcs.failsafe_mode, true);
        assert.strictEqual(dcs.maximum_lag_on_failover, 1048576);
        assert.strictEqual(dcs.postgresql.use_pg_rewind, true);
        assert.strictEqual(dcs.postgresql.use_slots, true);
        assert.strictEqual(dcs.postgresql.parameters.max_slot_wal_keep_size, "1GB");
        assert.strictEqual(dcs.postgresql.parameters.password_encryption, "scram-sha-256");
        assert.deepStrictEqual(
            JSON.parse(pod(["dynamic-config"]).stdout),
            dcs,
            "the applier keeps the DCS equal to the bootstrap settings",
        );
    });

    it("turns synchronous replication off, or strict", () => {
        const off = config({ SYNCHRONOUS_MODE: "off" }).bootstrap.dcs;
        assert.deepStrictEqual([off.synchronous_mode, off.synchronous_mode_strict], [false, false]);
        const strict = config({ SYNCHRONOUS_MODE: "strict" }).bootstrap.dcs;
        assert.deepStrictEqual([strict.synchronous_mode, strict.synchronous_mode_strict], [true, true]);
    });

    it("admits the app role from clients, replication and the superuser from the pod network and the pod itself only, and rejects the rest", () => {
        assert.deepStrictEqual(config({ POD_CIDR: "10.244.0.0/16" }).postgresql.pg_hba, [
            "local all postgres peer",
            "local all all reject",
            // Patroni's own replication connection to localhost (its server's timeline), only from the pod itself.
            'host replication "replicator" 127.0.0.1/32 scram-sha-256',
            "host all postgres 127.0.0.1/32 scram-sha-256",
            'host replication "replicator" ::1/128 scram-sha-256',
            "host all postgres ::1/128 scram-sha-256",
            'host replication "replicator" 10.244.0.0/16 scram-sha-256',
            "host all postgres 10.244.0.0/16 scram-sha-256",
            'host all "replicator" all reject',
            "host all postgres all reject",
            'host "stateful-flask-db" "stateful-flask-user" 0.0.0.0/0 scram-sha-256',
            "host all all all reject",
        ]);
    });

    it("protects the REST API's unsafe endpoints with the API password, and runs pg_rewind as the superuser", () => {
        const c = config();
        assert.deepStrictEqual(c.restapi.authentication, { username: "patroni", password: "api" });
        assert.deepStrictEqual(c.ctl.authentication, { username: "patroni", password: "api" });
        assert.deepStrictEqual(c.postgresql.authentication.superuser, { username: "postgres", password: "su" });
        assert.deepStrictEqual(c.postgresql.authentication.rewind, { username: "postgres", password: "su" });
        assert.deepStrictEqual(c.postgresql.authentication.replication, { username: "replicator", password: "repl" });
        assert.strictEqual(c.postgresql.remove_data_directory_on_rewind_failure, false);
        assert.strictEqual(c.postgresql.remove_data_directory_on_diverged_timelines, false);
        assert.deepStrictEqual(c.watchdog, { mode: "off" });
        assert.strictEqual(c.tags.nofailover, false);
    });

    it("an adopted standby of the previous entrypoint cannot promote and connects as the old bootstrap superuser", () => {
        const c = config({ ADOPTING_STANDBY: "true" });
        assert.strictEqual(c.tags.nofailover, true);
        assert.deepStrictEqual(c.postgresql.authentication.superuser, {
            username: "stateful-flask-user",
            password: "app",
        });
        assert.ok(c.postgresql.pg_hba.includes('local all "stateful-flask-user" scram-sha-256'));
    });

    it("refuses a bad environment, naming the variable, its value and what is allowed", () => {
        fails({ SUPERUSER_PASSWORD: undefined }, "SUPERUSER_PASSWORD is required");
        fails({ POD_NAME: "Postgres_1" }, "POD_NAME='Postgres_1' is not valid; expected a pod name such as postgres-0");
        fails({ POD_IP: "pod-ip" }, "POD_IP='pod-ip' is not an IP address");
        fails(
            { PGDATA: "/data" },
            "PGDATA='/data' is not valid; expected an absolute path to a subdirectory of the volume",
        );
        fails({ SYNCHRONOUS_MODE: "yes" }, "SYNCHRONOUS_MODE='yes' is not valid; expected one of on, off, strict");
        fails({ TTL: "6" }, "TTL=6, LOOP_WAIT=1, RETRY_TIMEOUT=3: LOOP_WAIT + 2 * RETRY_TIMEOUT must not exceed TTL");
        fails(
            { POD_CIDR: "10.244.0.0" },
            "POD_CIDR contains '10.244.0.0'; expected a CIDR with a prefix length, e.g. 10.244.0.0/32",
        );
        fails({ PGPORT: "70000" }, "PGPORT='70000' is not valid; expected an integer from 1 to 65535");
        fails(
            { REPLICATION_USER: "postgres" },
            "REPLICATION_USER='postgres' must differ from APP_USER and from the superuser postgres",
        );
        fails(
            { MAX_SLOT_WAL_KEEP_SIZE: "1G" },
            "MAX_SLOT_WAL_KEEP_SIZE='1G' is not valid; expected a size such as 512MB or 1GB (-1 = unlimited)",
        );
    });
});
