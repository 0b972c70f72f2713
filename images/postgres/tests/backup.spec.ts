/**
 * Backups and restores with pgBackRest to an S3-compatible store (versitygw over TLS on loopback), from Patroni
 * members started by the image's entrypoint: point-in-time recovery, the lost volume, a hole or a corruption in
 * the WAL archive, a store that fails, and a failover. One failure mode per case, each asserting on rows.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    type Member,
    type ObjectStore,
    type PatroniCluster,
    Writer,
    archiveNow,
    backups,
    idsOn,
    sleep,
    waitFor,
    withControlPlane,
    withObjectStore,
} from "./harness";

const STANZA = "postgres";

describe("Backups: WAL archive and base backups to object storage, and point-in-time restore", function () {
    this.timeout(300000);
    const env = withControlPlane();
    const objectStore = withObjectStore();
    let store: ObjectStore;
    before(() => {
        store = objectStore();
    });

    /** A one-member cluster archiving to `repo` (plus `extra` env), its leader running and its first backup taken. */
    async function source(
        ns: string,
        repo: string,
        extra: Record<string, string> = {},
        size = 1,
    ): Promise<PatroniCluster> {
        const c = await env.cluster(ns, size, store.env(repo, extra));
        c.members[0].start();
        await c.healthy(0);
        for (const m of c.members.slice(1)) m.start();
        const { leader } = await c.healthy(size - 1);
        await waitFor("the first full backup", 120000, () => backups(leader).length >= 1 || undefined);
        leader.sql(
            "CREATE TABLE IF NOT EXISTS rows (id bigserial PRIMARY KEY, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
            { user: "stateful-flask-user" },
        );
        return c;
    }

    /** A new one-member cluster restored from `from` (to `target`), archiving to `repo`. */
    async function restored(ns: string, repo: string, from: string, target?: string): Promise<PatroniCluster> {
        return env.cluster(
            ns,
            1,
            store.env(repo, { RESTORE_FROM_PATH: from, ...(target ? { RESTORE_TARGET_TIME: target } : {}) }),
        );
    }

    const rows = (m: Member, phase?: string) =>
        m.sql(
            `SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM rows${phase ? ` WHERE phase = '${phase}'` : ""}`,
            { user: "stateful-flask-user" },
        );

    it("backup-status reports the schedule: the first full backup is the last one, it ended after the firing it answers for, nothing is overdue", async () => {
        const c = await source("schedule-status", "/repo/schedule-status", { BACKUP_SCHEDULE: "0 3 1,15 * 0" });
        const r = c.members[0].podCommand(["backup-status"]);
        assert.strictEqual(r.status, 0, r.stderr);
        const { backups: taken, schedule } = JSON.parse(r.stdout);
        assert.deepStrictEqual(
            taken.map((b: any) => b.type),
            ["full"],
        );
        assert.strictEqual(schedule.schedule, "0 3 1,15 * 0");
        assert.strictEqual(schedule.last_full_backup, taken[0].stop);
        assert.ok(
            schedule.expected_latest_firing <= schedule.last_firing && schedule.last_firing < schedule.last_full_backup,
            JSON.stringify(schedule),
        );
        assert.ok(schedule.next_firing > schedule.last_full_backup, JSON.stringify(schedule));
        assert.strictEqual(schedule.overdue, null);
    });

    it("point in time: backup, rows, time T, more rows, DROP TABLE; a restore to T has exactly the rows from before T", async () => {
        const src = await source("pitr-src", "/repo/pitr");
        const leader = src.members[0];
        leader.sql("INSERT INTO rows (phase) SELECT 'before' FROM generate_series(1, 200)", {
            user: "stateful-flask-user",
        });
        const before = rows(leader, "before");
        await sleep(2000); // backup stop times have 1 s resolution
        const target = new Date().toISOString();
        await sleep(1000);
        leader.sql("INSERT INTO rows (phase) SELECT 'after' FROM generate_series(1, 100)", {
            user: "stateful-flask-user",
        });
        leader.sql("DROP TABLE rows", { user: "stateful-flask-user" });
        await archiveNow(leader);

        const copy = await restored("pitr-copy", "/repo/pitr-copy", "/repo/pitr", target);
        copy.members[0].start();
        const { leader: restoredLeader } = await copy.healthy(0, 180000);
        assert.strictEqual(rows(restoredLeader), before, "exactly the rows committed before T");
        assert.strictEqual(rows(restoredLeader, "after"), "");
        assert.match(restoredLeader.log(), /restoring backup \S+ from \/repo\/pitr to /);
        // The copy is a new cluster on a new timeline and archives to its own path, never into the source's.
        await waitFor(
            "the copy's own stanza",
            120000,
            () => store.files("/repo/pitr-copy").some((f) => f.startsWith("archive/")) || undefined,
        );
        assert.strictEqual(
            restoredLeader.sql("SELECT rolname FROM pg_roles WHERE rolname = 'stateful-flask-user'"),
            "stateful-flask-user",
        );
    });

    it("the volume is lost: a restore to the end of the archive has every acknowledged write except the last archive_timeout's", async () => {
        const src = await source("lost-src", "/repo/lost", { ARCHIVE_TIMEOUT: "10" });
        const leader = src.members[0];
        const writer = new Writer(src.dsn(), 50);
        await sleep(25000);
        const lostAt = Date.now();
        await leader.crash();
        await writer.stop();
        fs.rmSync(leader.volume, { recursive: true, force: true });

        const copy = await restored("lost-copy", "/repo/lost-copy", "/repo/lost");
        copy.members[0].start();
        const { leader: back } = await copy.healthy(0, 180000);
        const have = new Set(
            back
                .sql("SELECT coalesce(string_agg(id::text, ','), '') FROM writes", { user: "stateful-flask-user" })
                .split(",")
                .filter(Boolean)
                .map(Number),
        );
        const missing = [...writer.acked.entries()].filter(([id]) => !have.has(id));
        const window = missing.length ? (lostAt - Math.min(...missing.map(([, at]) => at))) / 1000 : 0;
        process.stderr.write(
            `      lost volume: ${missing.length} of ${writer.acked.size} acknowledged writes lost, the last ${window.toFixed(1)} s (archive_timeout 10 s)\n`,
        );
        assert.ok(have.size > 0 && writer.acked.size > 100, `restored ${have.size} of ${writer.acked.size}`);
        assert.ok(window <= 10 + 5, `writes older than archive_timeout were lost: the last ${window.toFixed(1)} s`);
    });

    it("restoreFrom on a volume that already holds a cluster: the pod stops naming it, and the data is untouched", async () => {
        const src = await source("restore-over", "/repo/over");
        const m = src.members[0];
        m.sql("INSERT INTO rows (phase) SELECT 'kept' FROM generate_series(1, 30)", { user: "stateful-flask-user" });
        const before = rows(m);
        await m.stop();
        const listing = () =>
            `${fs.readdirSync(m.pgdata).sort().join(",")} ${fs.statSync(path.join(m.pgdata, "global", "pg_control")).mtimeMs}`;
        const untouched = listing();
        m.start({ env: { RESTORE_FROM_PATH: "/repo/pitr" } });
        assert.notStrictEqual(await m.exited(60000), 0);
        assert.match(
            m.log(),
            /FATAL: RESTORE_FROM_PATH is set \(\/repo\/pitr latest\) but \S+ already holds a cluster; refusing to restore over it/,
        );
        assert.strictEqual(listing(), untouched, "nothing in PGDATA changed");
        m.start();
        await src.healthy(0);
        assert.strictEqual(rows(m), before, "the cluster starts as it was once restoreFrom is gone");
    });

    for (const damage of ["missing", "corrupted"] as const) {
        it(`a ${damage} WAL segment in the repository: the restore stops with an error naming it and never starts a database`, async () => {
            const repo = `/repo/${damage}`;
            const src = await source(`${damage}-src`, repo);
            const leader = src.members[0];
            for (let i = 0; i < 4; i++) {
                leader.sql(`INSERT INTO rows (phase) SELECT 'batch ${i}' FROM generate_series(1, 50)`, {
                    user: "stateful-flask-user",
                });
                await archiveNow(leader);
            }
            const backup = backups(leader)[0];
            const segments = store
                .files(repo)
                .filter((f) => f.startsWith(`archive/${STANZA}/`) && /\/[0-9A-F]{24}-[0-9a-f]{40}/.test(f))
                .sort();
            const after = segments.filter((f) => path.basename(f).slice(0, 24) > backup.wal[1]);
            assert.ok(after.length >= 3, `segments after the backup: ${after}`);
            const victim = path.join(store.data, store.bucket, repo.slice(1), after[1]);
            const segment = path.basename(after[1]).slice(0, 24);
            if (damage === "missing") fs.rmSync(victim);
            else fs.writeFileSync(victim, fs.readFileSync(victim).subarray(0, 64));

            const copy = await restored(`${damage}-copy`, `/repo/${damage}-copy`, repo);
            const m = copy.members[0];
            m.start();
            const message =
                damage === "missing"
                    ? new RegExp(`FATAL: the WAL archive in /repo/missing has a hole: segment ${segment}.*refusing`)
                    : new RegExp(
                          `FATAL: the repository /repo/corrupted has damaged files: WAL segment ${segment} \\(.*refusing`,
                      );
            await waitFor("the restore's error", 120000, () => message.test(m.log()) || undefined);
            await sleep(10000); // time enough for a bootstrap retry to start a server, if anything would
            assert.doesNotMatch(
                m.log(),
                /database system is ready to accept connections/,
                "no database was started from the damaged archive",
            );
            const c = await m.rest("/cluster").catch(() => undefined);
            assert.deepStrictEqual(
                (c?.body?.members ?? []).filter((x: any) => x.role === "leader"),
                [],
                "no leader",
            );
        });
    }

    it("an unreachable store: the database keeps taking writes, the failure is loud, and archiving resumes without a hole", async () => {
        const src = await source("store-down", "/repo/down");
        const leader = src.members[0];
        await store.stop();
        const writer = new Writer(src.dsn(), 50);
        for (let i = 0; i < 3; i++) {
            leader.sql(`INSERT INTO rows (phase) SELECT 'while down ${i}' FROM generate_series(1, 20)`, {
                user: "stateful-flask-user",
            });
            leader.sql("SELECT pg_switch_wal()");
        }
        await waitFor(
            "the agent's loud failure",
            120000,
            () => /WAL archiving has failed since/.test(leader.log()) || undefined,
        );
        await writer.waitForAcks(50);
        const ns = src.namespace;
        const annotation = src.controlPlane.kubectl([
            "-n",
            ns,
            "get",
            "pod",
            leader.name,
            "-o",
            "jsonpath={.metadata.annotations.stateful-flask/archive}",
        ]);
        assert.match(annotation, /^failing since /);
        const events = src.controlPlane.kubectl([
            "-n",
            ns,
            "get",
            "events",
            "-o",
            'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
        ]);
        assert.match(events, /WALArchivingFailing/);

        await store.start();
        await archiveNow(leader);
        await writer.stop();
        const check = leader.podCommand(["check-archive", "/repo/down"]);
        assert.strictEqual(check.status, 0, `archive check after the store came back:\n${check.stderr}`);
        assert.match(check.stderr, /no hole/);
        await waitFor(
            "the annotation back to ok",
            60000,
            () =>
                /^ok, last /.test(
                    src.controlPlane.kubectl([
                        "-n",
                        ns,
                        "get",
                        "pod",
                        leader.name,
                        "-o",
                        "jsonpath={.metadata.annotations.stateful-flask/archive}",
                    ]),
                ) || undefined,
        );
    });

    for (const [what, extra, error] of [
        [
            "wrong credentials",
            { BACKUP_S3_KEY_SECRET: "not-the-secret" },
            /stanza-create failed.*(403|SignatureDoesNotMatch|Forbidden)/,
        ],
        [
            "a missing bucket",
            { BACKUP_S3_BUCKET: "no-such-bucket" },
            /stanza-create failed.*(404|NoSuchBucket|does not exist|not found)/i,
        ],
    ] as const) {
        it(`${what}: the repository error is in the log and an event, and the database keeps taking writes`, async () => {
            const c = await env.cluster(
                `bad-store-${what.split(" ")[1]}`,
                1,
                store.env(`/repo/${what.replace(/ /g, "-")}`, extra),
            );
            const m = c.members[0];
            m.start();
            await c.healthy(0);
            await waitFor("the repository error", 120000, () => error.test(m.log()) || undefined);
            const writer = new Writer(c.dsn(), 50);
            await writer.waitForAcks(20);
            await writer.stop();
            assert.deepStrictEqual(idsOn(m).length >= 20, true);
            const events = c.controlPlane.kubectl([
                "-n",
                c.namespace,
                "get",
                "events",
                "-o",
                'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
            ]);
            assert.match(events, /BackupRepositoryUnavailable/);
        });
    }

    it("across a failover: archiving continues on the new leader's timeline without a hole, and a restore has the rows written on the new leader", async () => {
        const src = await source("failover-src", "/repo/failover", {}, 2);
        const { leader } = await src.healthy(1);
        leader.sql("INSERT INTO rows (phase) SELECT 'old leader' FROM generate_series(1, 100)", {
            user: "stateful-flask-user",
        });
        await archiveNow(leader);
        await leader.crash();
        const next = await waitFor("a new leader", 60000, async () => {
            const l = (await src.healthy(0)).leader;
            return l.name !== leader.name ? l : undefined;
        });
        next.sql("INSERT INTO rows (phase) SELECT 'new leader' FROM generate_series(1, 100)", {
            user: "stateful-flask-user",
        });
        await archiveNow(next);
        assert.notStrictEqual(
            next.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"),
            "00000001",
            "the new leader writes on a new timeline",
        );
        const check = next.podCommand(["check-archive", "/repo/failover"]);
        assert.strictEqual(check.status, 0, check.stderr);
        const expected = rows(next);

        const copy = await restored("failover-copy", "/repo/failover-copy", "/repo/failover");
        copy.members[0].start();
        const { leader: back } = await copy.healthy(0, 180000);
        assert.strictEqual(rows(back), expected);
        assert.strictEqual(rows(back, "new leader").split(",").length, 100);
    });
});
