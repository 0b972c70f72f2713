/**
 * Bad input to the Postgres pod: each case ends with a clear error in the log and a data directory nobody touched.
 */
import * as assert from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    PYTHON,
    Writer,
    freePort,
    installPodFiles,
    postgresIdentity,
    sleep,
    tempDir,
    waitFor,
    withControlPlane,
} from "./harness";

/** Every file under `dir` with its size, mode and mtime: equal before and after means nothing was touched. */
function snapshot(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            const st = fs.lstatSync(p);
            out.push(`${path.relative(dir, p)} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`);
            if (e.isDirectory()) walk(p);
        }
    };
    walk(dir);
    return out.sort();
}

describe("Postgres pod: bad input is a clear error and touches no data", function () {
    this.timeout(240000);
    const env = withControlPlane();
    const oneMember = (ns: string) => env.cluster(ns, 1);

    it("an unreachable Kubernetes API at start: exits with an error naming it, before touching the volume", async () => {
        const c = await oneMember("bad-dcs");
        const m = c.members[0];
        // A kubeconfig whose server is a closed port.
        const port = await freePort();
        const kc = path.join(c.root, "unreachable.kubeconfig");
        fs.writeFileSync(
            kc,
            fs
                .readFileSync(env.controlPlane().kubeconfig, "utf8")
                .replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`),
        );
        const pg = postgresIdentity();
        fs.chownSync(kc, pg.uid, pg.gid);
        const before = snapshot(m.volume);
        m.start({ env: { KUBECONFIG: kc, DCS_CHECK_TIMEOUT: "4" } });
        assert.strictEqual(await m.exited(60000), 1);
        assert.match(
            m.log(),
            new RegExp(
                `FATAL: cannot reach the Kubernetes API at https://127\\.0\\.0\\.1:${port} after 4s \\(.*Connection refused.*\\)\\. Patroni keeps the leader lock there; PostgreSQL is not started without it and the data directory was not touched`,
            ),
        );
        assert.deepStrictEqual(snapshot(m.volume), before);
        assert.deepStrictEqual(before, [], "the volume stays empty: no marker, no PGDATA");
    });

    it("a replica with a wrong replication password: the authentication error in its log, its volume stays empty, the leader keeps taking writes", async () => {
        const c = await env.cluster("bad-password", 2);
        const [leader, replica] = c.members;
        leader.start();
        await c.healthy(0);
        replica.start({ env: { REPLICATION_PASSWORD: "not-the-password" } });
        await waitFor(
            "the authentication error",
            60000,
            () => /password authentication failed for user "replicator"/.test(replica.log()) || undefined,
        );
        await sleep(5000);
        assert.ok(!fs.existsSync(path.join(replica.pgdata, "PG_VERSION")), "no half-cloned data directory");
        assert.deepStrictEqual(
            fs.readdirSync(replica.volume).filter((f) => f !== ".patroni-managed"),
            [],
        );
        const writer = new Writer(c.dsn());
        await writer.waitForAcks(20);
        await writer.stop();
        assert.strictEqual(leader.sql("SELECT count(*) FROM pg_stat_replication"), "0");
    });

    it("a data directory of another major version: exits naming both versions, nothing changed", async () => {
        const c = await oneMember("bad-major");
        const m = c.members[0];
        const pg = postgresIdentity();
        // What a PostgreSQL 14 data directory looks like to the entrypoint.
        fs.mkdirSync(path.join(m.pgdata, "base"), { recursive: true });
        fs.writeFileSync(path.join(m.pgdata, "PG_VERSION"), "14\n");
        fs.writeFileSync(path.join(m.pgdata, "postgresql.conf"), "# a PostgreSQL 14 cluster\n");
        for (const p of [
            m.pgdata,
            path.join(m.pgdata, "base"),
            path.join(m.pgdata, "PG_VERSION"),
            path.join(m.pgdata, "postgresql.conf"),
        ])
            fs.chownSync(p, pg.uid, pg.gid);
        const before = snapshot(m.volume);
        m.start();
        assert.strictEqual(await m.exited(60000), 1);
        assert.match(
            m.log(),
            /FATAL: .*pgdata holds a PostgreSQL 14 cluster but this image runs PostgreSQL 15; nothing was changed/,
        );
        assert.deepStrictEqual(snapshot(m.volume), before);
    });

    it("a missing password variable: exits naming it before anything else", async () => {
        const c = await oneMember("bad-env");
        const m = c.members[0];
        m.start({ env: { SUPERUSER_PASSWORD: undefined } });
        assert.strictEqual(await m.exited(30000), 1);
        assert.match(m.log(), /FATAL: SUPERUSER_PASSWORD is required/);
        assert.deepStrictEqual(snapshot(m.volume), []);
    });

    it("runs from a checkout the postgres user cannot enter (a 0700 home directory): the files it runs are copied", async () => {
        // A checkout under a directory only root may enter.
        const home = tempDir("home-");
        fs.chmodSync(home, 0o700);
        const checkout = path.join(home, "clone", "images", "postgres", "pod");
        fs.cpSync(path.join(__dirname, "..", "pod"), checkout, { recursive: true });
        const c = await oneMember("bad-checkout");
        const copy = installPodFiles(path.join(c.root, "pod-from-home"), checkout);
        const m = c.members[0];
        const pg = postgresIdentity();
        const asPostgres = (script: string) =>
            spawnSync(PYTHON, [script, "env"], { encoding: "utf8", env: m.env(), uid: pg.uid, gid: pg.gid, cwd: "/" });
        const direct = asPostgres(path.join(checkout, "pod.py"));
        assert.notStrictEqual(direct.status, 0, "the postgres user cannot read the checkout itself");
        assert.match(direct.stderr, /Permission denied/);
        const viaCopy = asPostgres(path.join(copy, "pod.py"));
        assert.strictEqual(viaCopy.status, 0, viaCopy.stderr);
        assert.match(viaCopy.stdout, /^export APP_USER=stateful-flask-user$/m);
        fs.rmSync(home, { recursive: true, force: true });
    });
});
