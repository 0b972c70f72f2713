/**
 * Patroni 3.0.2 (Debian bookworm's) compares the synchronous standby it would pick with the one the DCS records, not
 * with synchronous_standby_names. A standby it has just named that goes away before it records it (the 2 s Patroni
 * waits; a scale-down right after a switchover, as the e2e suite's 04 → 05 does) leaves both empty and the setting
 * naming the gone standby: every commit waits for it forever. The pod's sync guard (postgres_pod/sync_guard.py) gets the
 * leader out of it. One case: the stuck state made on purpose, the guard's repair, and the writes on the rows.
 */
import * as assert from "node:assert";
import { Writer, idsOn, missingAcks, waitFor, withControlPlane } from "./harness";

describe("a synchronous standby gone before Patroni recorded it (Patroni 3.0.2), and the pod's sync guard", function () {
    this.timeout(240000);
    const env = withControlPlane();

    it("commits wait for the gone standby, then go through once the guard records it and Patroni takes it out; no acknowledged write lost", async () => {
        const ns = "patroni-sync-guard";
        const cluster = await env.cluster(ns, 2);
        const cp = env.controlPlane();
        const syncKey = () =>
            JSON.parse(cp.kubectl(["-n", ns, "get", "configmap", "postgres-sync", "-o", "json"])).metadata
                .annotations ?? {};
        cluster.members[0].start();
        await cluster.healthy(0);
        cluster.members[1].start();
        const {
            leader,
            replicas: [standby],
        } = await cluster.healthy(1);
        await waitFor(
            "the DCS to record the synchronous standby",
            30000,
            () => syncKey().sync_standby === standby.name || undefined,
        );
        const writer = new Writer(cluster.dsn(), 50);
        await writer.waitForAcks(20);

        // What the race leaves, made without the race: Patroni's loop stands still while the standby goes and the
        // DCS loses its name (as if Patroni had never recorded it), then runs on.
        leader.pause();
        try {
            await standby.crash();
            cp.kubectl(["-n", ns, "annotate", "configmap", "postgres-sync", "sync_standby-"]);
        } finally {
            leader.resume();
        }
        const stuckAt = Date.now();
        assert.strictEqual(leader.sql("SHOW synchronous_standby_names"), `"${standby.name}"`);
        assert.strictEqual(syncKey().sync_standby, undefined);
        await waitFor(
            "a commit waiting for the gone standby",
            10000,
            () =>
                Number(leader.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")) > 0 ||
                undefined,
        );
        const ackedWhenStuck = writer.acked.size;

        const firstAfter = await waitFor("writes acknowledged again", 60000, () => writer.firstAckAfter(stuckAt));
        await writer.waitForAcks(ackedWhenStuck + 20);
        await writer.stop();
        process.stderr.write(
            `      stuck for ${((firstAfter - stuckAt) / 1000).toFixed(1)} s; ${writer.acked.size} acknowledged\n`,
        );
        assert.match(
            leader.log(),
            new RegExp(
                `sync-guard: synchronous_standby_names is "${standby.name}", but ${standby.name} is not streaming and the DCS records none`,
            ),
        );
        assert.strictEqual(leader.sql("SHOW synchronous_standby_names"), "", "Patroni took the gone standby out");
        assert.deepStrictEqual(missingAcks(writer, idsOn(leader)), [], "every acknowledged write is on the leader");

        // The standby comes back: it streams, and is the synchronous standby again.
        standby.start();
        await cluster.healthy(1);
        await waitFor(
            "the standby synchronous again",
            60000,
            () => leader.sql("SHOW synchronous_standby_names") === `"${standby.name}"` || undefined,
        );
    });
});
