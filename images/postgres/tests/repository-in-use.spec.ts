/**
 * An empty member of a cluster that Patroni's DCS has never recorded makes a new cluster; not over a repository that
 * already holds one (postgres_pod/bootstrap_check.py, docs/backups.md "After a total loss"). Real Patroni members
 * through the image's entrypoint, the real pgBackRest against versitygw.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    type Member,
    type PatroniCluster,
    archiveNow,
    backups,
    postgresIdentity,
    ownedDir,
    waitFor,
    withControlPlane,
    withObjectStore,
} from "./harness";

describe("A new cluster over a repository that already holds one", function () {
    this.timeout(600000);
    const env = withControlPlane();
    const store = withObjectStore();

    const rows = (m: Member) =>
        m.sql("SELECT coalesce(string_agg(phase || ':' || n, ',' ORDER BY phase, n), '') FROM rows", {
            user: "stateful-flask-user",
        });

    /** A one-member cluster running, with its first full backup, a table and `phase`'s rows archived. */
    async function running(c: PatroniCluster, phase: string): Promise<Member> {
        c.members[0].start();
        const { leader } = await c.healthy(0, 180000);
        // The agent takes the first full backup; a restored cluster's can fail while its new stanza and timeline
        // settle, and the agent retries only after 10 minutes: then it is taken by hand, as an operator would.
        const agentDeadline = Date.now() + 90000;
        await waitFor("the first full backup", 300000, () => {
            if (backups(leader).length >= 1) return true;
            if (Date.now() > agentDeadline) leader.podCommand(["full-backup"]);
            return undefined;
        });
        leader.sql("CREATE TABLE IF NOT EXISTS rows (phase text NOT NULL, n int NOT NULL)", {
            user: "stateful-flask-user",
        });
        leader.sql(`INSERT INTO rows SELECT '${phase}', g FROM generate_series(1, 20) g`, {
            user: "stateful-flask-user",
        });
        await archiveNow(leader);
        return leader;
    }

    /** What a member left behind when it refused: no cluster on its volume, none recorded in the DCS, nothing archived. */
    function assertNothingMade(c: PatroniCluster, m: Member, log: string, repos: Record<string, string[]>): void {
        assert.ok(!fs.existsSync(path.join(m.pgdata, "PG_VERSION")), `a cluster was initialised in ${m.pgdata}`);
        assert.doesNotMatch(log, /starting Patroni|database system is ready/);
        const cm = c.controlPlane.kubectl([
            "-n",
            c.namespace,
            "get",
            "configmap",
            "postgres-config",
            "--ignore-not-found",
            "-o",
            "json",
        ]);
        assert.strictEqual(
            cm ? JSON.parse(cm).metadata.annotations?.initialize : undefined,
            undefined,
            "the DCS records no cluster",
        );
        for (const [repo, files] of Object.entries(repos))
            assert.deepStrictEqual(store().files(repo), files, `nothing written to ${repo}`);
        const events = c.controlPlane.kubectl([
            "-n",
            c.namespace,
            "get",
            "events",
            "-o",
            'jsonpath={range .items[*]}{.type} {.reason} {.involvedObject.name}{"\\n"}{end}',
        ]);
        assert.match(events, new RegExp(`^Warning NewClusterRefused ${m.name}$`, "m"));
    }

    it("a restored stack loses its volumes and its DCS, restoreFrom still set: it refuses to restore the old source again, and its own latest state comes back on request", async () => {
        const src = await env.cluster("loss-src", 1, store().env("/repo/loss-src"));
        await running(src, "source");
        await src.stop();

        // The stack restored from /repo/loss-src, archiving to its own path, and took writes after the restore.
        const copy = await env.cluster(
            "loss-copy",
            1,
            store().env("/repo/loss-copy", { RESTORE_FROM_PATH: "/repo/loss-src" }),
        );
        const m = await running(copy, "after the restore");
        const latest = rows(m);
        assert.match(latest, /^after the restore:1,.*source:20$/);
        const sysid = m.sql("SELECT system_identifier FROM pg_control_system()");

        // A total loss: the member, its volume, its pod and the namespace's Patroni state.
        await m.crash();
        for (const entry of fs.readdirSync(m.volume))
            fs.rmSync(path.join(m.volume, entry), { recursive: true, force: true });
        ownedDir(m.volume, postgresIdentity());
        for (const cm of copy.controlPlane.configMaps(copy.namespace))
            copy.controlPlane.kubectl(["-n", copy.namespace, "delete", cm]);
        copy.controlPlane.kubectl(["-n", copy.namespace, "delete", "pod", m.name]);
        copy.controlPlane.createNamespace(copy.namespace, [m.name]);
        const repos = {
            "/repo/loss-src": store().files("/repo/loss-src"),
            "/repo/loss-copy": store().files("/repo/loss-copy"),
        };

        // `pulumi up` with the same config.
        const logged = m.log().length;
        m.start();
        assert.notStrictEqual(await m.exited(120000), 0, "the member started although a restore would go back in time");
        const log = m.log().slice(logged);
        assert.match(
            log,
            new RegExp(
                `FATAL: the volume is empty and the cluster was never initialised .* this cluster's repository ` +
                    `s3://backups/repo/loss-copy already holds stanza postgres: system id ${sysid}, 1 backup, the newest \\S+ \\(ended \\S+\\), ` +
                    `WAL archived up to [0-9A-F]{24}\\. RESTORE_FROM_PATH=/repo/loss-src is set, but this stack's own repository is newer`,
            ),
        );
        assert.match(
            log,
            /Choose: \(1\) bring back this repository's latest state: pulumi config set restoreFrom \/repo\/loss-copy && pulumi config set backupPath \/repo\/loss-copy-2 && pulumi up;/,
        );
        assertNothingMade(copy, m, log, repos);

        // Choice (1): the stack's own latest state, every row written after the first restore included.
        m.start({ env: { RESTORE_FROM_PATH: "/repo/loss-copy", BACKUP_PATH: "/repo/loss-copy-2" } });
        const { leader } = await copy.healthy(0, 180000);
        assert.strictEqual(rows(leader), latest);
    });

    it("an empty new cluster whose backupPath holds another cluster's stanza: it refuses before initdb", async () => {
        const other = await env.cluster("shared-old", 1, store().env("/repo/shared"));
        const o = await running(other, "old");
        const sysid = o.sql("SELECT system_identifier FROM pg_control_system()");
        await other.stop();
        const repos = { "/repo/shared": store().files("/repo/shared") };

        // Another namespace (or a fresh `up` after a destroy), the same backupPath.
        const fresh = await env.cluster("shared-new", 1, store().env("/repo/shared"));
        const m = fresh.members[0];
        m.start();
        assert.notStrictEqual(
            await m.exited(120000),
            0,
            "a new cluster was initialised over another cluster's repository",
        );
        assert.match(
            m.log(),
            new RegExp(
                `FATAL: the volume is empty and the cluster was never initialised .* s3://backups/repo/shared already holds ` +
                    `stanza postgres: system id ${sysid}, 1 backup.* A new database gets a new system id, which pgBackRest refuses to archive into this ` +
                    `stanza.* \\(2\\) start an empty database and leave this repository as it is: pulumi config set backupPath /repo/shared-2 && pulumi up`,
            ),
        );
        assertNothingMade(fresh, m, m.log(), repos);
        assert.strictEqual(fs.existsSync(m.pgdata) ? fs.readdirSync(m.pgdata).length : 0, 0, "PGDATA is empty");
    });
});
