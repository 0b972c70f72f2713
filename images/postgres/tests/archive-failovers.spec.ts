/**
 * WAL archiving through failovers (issue 14): three Patroni members archiving to the real repository (pgBackRest,
 * versitygw over TLS) while a writer runs. Members' copies of an old timeline's fork segment differ after the fork;
 * once one is archived, another member that crashes as leader offers its own (Patroni's crash recovery marks it ready
 * again) and pgBackRest refuses it on every retry (error 45), with every later segment waiting behind it.
 * archive_push.py resolves it (docs/backups.md, "Failovers and the archive"); the soak (npm run soak) runs long random
 * sequences of faults on the real node.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    type Member,
    PASSWORDS,
    Writer,
    archiveNow,
    backups,
    idsOn,
    missingAcks,
    waitFor,
    withControlPlane,
    withObjectStore,
} from "./harness";

const auth = `Basic ${Buffer.from(`patroni:${PASSWORDS.api}`).toString("base64")}`;

function archiverState(m: Member): string {
    return m.sql(
        "SELECT archived_count || ' archived, last ' || coalesce(last_archived_wal, '-') || ', ' || failed_count || ' failed, last ' || coalesce(last_failed_wal, '-') FROM pg_stat_archiver",
    );
}

describe("WAL archiving through failovers", function () {
    this.timeout(900000);
    const env = withControlPlane();
    const store = withObjectStore();

    /**
     * The sequence the e2e suite ran into, made on purpose:
     *  1. the leader A stops renewing its lock but its PostgreSQL runs on (Patroni paused: a hung or force-deleted pod
     *     whose container still runs), so the synchronous standby B is promoted (timeline 2, forking inside segment N),
     *     and the third member C, which streamed timeline 1 from A, follows B: its copy of timeline 1's N ends at the
     *     fork, and it marks it done;
     *  2. A writes on (a commit that waits for a standby is flushed all the same), finishes segment N and archives it:
     *     timeline 1's N with A's WAL after the fork is the first copy in the repository;
     *  3. A resumes and is demoted and rewound;
     *  4. C becomes leader and crashes: Patroni's crash recovery deletes every archive status file, PostgreSQL marks
     *     C's copy of timeline 1's N ready again, and C, leading again, offers it.
     * Before archive_push.py, pgBackRest refused C's copy on every retry and no later segment was archived.
     */
    it("a leader that went on writing after it was replaced, then a crash of another member: the archive still catches up", async () => {
        // archive_timeout 60 s: no forced switch empties the segment in which the fork will be.
        const c = await env.cluster("diverged", 3, store().env("/repo/diverged", { ARCHIVE_TIMEOUT: "60" }));
        c.members[0].start();
        await c.healthy(0);
        c.members[1].start();
        await c.healthy(1);
        c.members[2].start();
        const { leader: a } = await c.healthy(2);
        await waitFor("the first full backup", 120000, () => backups(a).length >= 1 || undefined);
        const before = new Writer(c.dsn(), 50);
        await before.waitForAcks(20);
        await before.stop();
        const roles = async () => (await c.cluster()).members as Array<{ name: string; role: string }>;
        const syncName = (await roles()).find((m) => m.role === "sync_standby")!.name;
        const b = c.members.find((m) => m.name === syncName)!;
        const third = c.members.find((m) => m !== a && m !== b)!;

        // 1. Some WAL in the segment C streams, then A hangs (its Patroni stopped), B takes over, C follows B.
        a.sql("SELECT pg_switch_wal()");
        a.sql("INSERT INTO writes (payload) SELECT md5(g::text) FROM generate_series(1, 500) g", {
            user: "stateful-flask-user",
        });
        a.pause();
        await waitFor(`${b.name} promoted`, 60000, async () => (await b.state())?.role === "master" || undefined);
        await waitFor(
            `${third.name} streaming from ${b.name}`,
            60000,
            () => Number(b.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) >= 1 || undefined,
        );
        const n = `00000001${b.sql("SELECT pg_walfile_name(pg_current_wal_lsn())").slice(8)}`;
        // 2. A writes on and archives its own N.
        a.sql(
            "SET synchronous_commit = local; INSERT INTO writes (payload) VALUES ('written by the replaced leader'); SELECT pg_switch_wal()",
            { user: "postgres" },
        );
        await waitFor(
            `${a.name} archived its own ${n}`,
            60000,
            () => a.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= n || undefined,
        );
        // 3. A is demoted and rewound (it reaches a consistent state once the new leader writes again).
        const writer = new Writer(c.dsn(), 50);
        a.resume();
        await c.healthy(2, 180000);
        process.stderr.write(
            `      ${a.name} archived its ${n} after ${b.name} forked timeline 2 off it; ${third.name} has its own copy\n`,
        );

        // 4. C leads (the only standby while A is stopped, so the synchronous one), with enough WAL after N that N is
        //    below its removal horizon, and crashes.
        await a.stop();
        await waitFor(
            `${third.name} the synchronous standby`,
            90000,
            async () => (await roles()).some((m) => m.name === third.name && m.role === "sync_standby") || undefined,
        );
        const r = await b.rest("/switchover", {
            method: "POST",
            headers: { Authorization: auth, "Content-Type": "application/json" },
            body: JSON.stringify({ leader: b.name, candidate: third.name }),
        });
        assert.strictEqual(r.status, 200, `switchover to ${third.name} refused: ${JSON.stringify(r.body)}`);
        await waitFor(
            `${third.name} leads`,
            90000,
            async () =>
                ((await third.state())?.role === "master" && third.sql("SELECT NOT pg_is_in_recovery()") === "t") ||
                undefined,
        );
        a.start();
        for (let i = 0; i < 12; i++) {
            third.sql("INSERT INTO writes (payload) SELECT md5(g::text) FROM generate_series(1, 200) g", {
                user: "stateful-flask-user",
            });
            third.sql("SELECT pg_switch_wal()");
        }
        await third.crash();
        third.start();
        const { leader } = await c.healthy(2, 180000);
        await writer.waitForAcks(20, 120000);
        process.stderr.write(`      after the crash: leader ${leader.name}, ${archiverState(leader)}\n`);

        // The archive catches up on whichever member leads, and no divergent copy blocked it.
        let caughtUp = true;
        try {
            await archiveNow(leader, 90000);
        } catch {
            caughtUp = false;
        }
        const conflicts = c.members.flatMap((m) =>
            m
                .log()
                .split("\n")
                .filter((l) => /already exists in the repo1 archive with a different checksum/.test(l))
                .map((l) => `${m.name}: ${l.slice(0, 160)}`),
        );
        const resolved = c.members.flatMap((m) =>
            m
                .log()
                .split("\n")
                .filter((l) => /is not archived: /.test(l)),
        );
        process.stderr.write(
            `      ${conflicts.length} refusals of a divergent copy (pgBackRest error 45), ${resolved.length} resolved${resolved.length ? `: ${resolved[0].slice(0, 400)}` : ""}\n`,
        );
        assert.ok(
            caughtUp,
            `the archive did not catch up on ${leader.name}: ${archiverState(leader)}\n${conflicts.slice(-5).join("\n")}`,
        );
        await writer.stop();
        const ids = idsOn(leader);
        assert.deepStrictEqual(
            [...missingAcks(before, ids), ...missingAcks(writer, ids)],
            [],
            "acknowledged writes missing on the leader",
        );
        // The left-out copy is on the volume and the pod says so.
        const kept = fs.readdirSync(path.join(path.dirname(third.pgdata), "diverged-wal"));
        assert.ok(
            kept.some((f) => f.startsWith(`${n}-`)),
            `diverged-wal holds ${kept}`,
        );
        await waitFor(
            "the DivergentWALNotArchived event",
            60000,
            () =>
                /DivergentWALNotArchived/.test(
                    c.controlPlane.kubectl([
                        "-n",
                        c.namespace,
                        "get",
                        "events",
                        "-o",
                        'jsonpath={range .items[*]}{.reason}{"\\n"}{end}',
                    ]),
                ) || undefined,
        );

        // A new full backup, then a restore to the end of the archive holds every acknowledged write.
        const count = backups(leader).length;
        const full = await leader.podCommandAsync(["full-backup"]);
        assert.strictEqual(full.status, 0, full.stderr);
        assert.strictEqual(backups(leader).length, count + 1, "a new full backup");
        await archiveNow(leader, 60000);
        const copy = await env.cluster(
            "diverged-copy",
            1,
            store().env("/repo/diverged-copy", { RESTORE_FROM_PATH: "/repo/diverged" }),
        );
        copy.members[0].start();
        const { leader: back } = await copy.healthy(0, 180000);
        const restored = idsOn(back);
        assert.deepStrictEqual(
            [...missingAcks(before, restored), ...missingAcks(writer, restored)],
            [],
            "acknowledged writes missing from the restore",
        );
        process.stderr.write(
            `      restored to the end of the archive: ${restored.length} rows, all ${before.acked.size + writer.acked.size} acknowledged writes\n`,
        );
    });
});
