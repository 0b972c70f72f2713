/**
 * Three Patroni members (the image's entrypoint, as the postgres user) with the Kubernetes DCS on a loopback
 * kube-apiserver. One cluster, one failure mode per case, in order; each case starts from a healthy cluster and
 * asserts on rows: every write the writer got an acknowledgement for, and which members accepted writes.
 */
import * as assert from "node:assert";
import {
    type ControlPlane,
    Load,
    PASSWORDS,
    type PatroniCluster,
    Writer,
    idsOn,
    missingAcks,
    sleep,
    tableDigest,
    waitFor,
    withControlPlane,
} from "./harness";

describe("Patroni cluster: failover on the Kubernetes DCS, no acknowledged write lost", function () {
    this.timeout(240000);
    const env = withControlPlane();
    let cluster: PatroniCluster;
    let cp: ControlPlane;

    before(async function () {
        cp = env.controlPlane();
        cluster = await env.cluster("patroni-failover", 3);
    });

    /** Every member's rows, once replication has caught up with the leader's. */
    async function sameRowsEverywhere(): Promise<{ count: number; md5: string }> {
        const { leader } = await cluster.healthy(2);
        const want = tableDigest(leader);
        await waitFor(
            "every member to have the leader's rows",
            60000,
            () =>
                cluster.members.every((m) => {
                    const d = tableDigest(m);
                    return d.count === want.count && d.md5 === want.md5;
                }) || undefined,
        );
        return want;
    }

    it("bootstraps one leader whose two replicas clone it and stream, one synchronously, with data checksums", async () => {
        cluster.members[0].start();
        await cluster.healthy(0);
        cluster.members[1].start();
        cluster.members[2].start();
        const { leader, replicas } = await cluster.healthy(2);
        assert.strictEqual(leader.name, "postgres-0");
        assert.deepStrictEqual(
            replicas.map((m) => m.name),
            ["postgres-1", "postgres-2"],
        );
        const states = leader.sql(
            "SELECT string_agg(application_name || ':' || state || ':' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication",
        );
        assert.match(states, /^postgres-1:streaming:(sync|async),postgres-2:streaming:(sync|async)$/);
        assert.strictEqual(states.split(",").filter((s) => s.endsWith(":sync")).length, 1, states);
        assert.strictEqual(leader.sql("SHOW data_checksums"), "on");
        assert.strictEqual(
            leader.sql(
                "SELECT rolsuper::text || ',' || rolcanlogin::text FROM pg_roles WHERE rolname = 'stateful-flask-user'",
            ),
            "false,true",
        );
        assert.strictEqual(
            leader.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'stateful-flask-db'"),
            "stateful-flask-user",
        );
        // The synchronous standby is recorded in postgres-sync a loop after it is chosen.
        await waitFor(
            "the postgres-sync ConfigMap",
            20000,
            () => cp.configMaps("patroni-failover").includes("configmap/postgres-sync") || undefined,
        );
        assert.deepStrictEqual(cp.configMaps("patroni-failover"), [
            "configmap/postgres-config",
            "configmap/postgres-leader",
            "configmap/postgres-sync",
        ]);
        assert.deepStrictEqual(cp.podLabels("patroni-failover"), {
            "postgres-0": "master",
            "postgres-1": "replica",
            "postgres-2": "replica",
        });

        const writer = new Writer(cluster.dsn());
        await writer.waitForAcks(100);
        await writer.stop();
        const digest = await sameRowsEverywhere();
        // TLS everywhere: replication between members, and clients (verify-full); a plain connection is refused.
        assert.strictEqual(
            leader.sql("SELECT string_agg(s.ssl::text, ',') FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"),
            "true,true",
        );
        assert.strictEqual(
            leader.sql("SELECT ssl::text || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
            "true TLSv1.3",
        );
        assert.throws(
            () => leader.sql("SELECT 1", { sslmode: "disable" }),
            /pg_hba.conf rejects connection for host "127.0.0.1", user "postgres", database "stateful-flask-db", no encryption/,
        );
        assert.ok(digest.count >= 100, `rows: ${digest.count}`);
        assert.deepStrictEqual(missingAcks(writer, idsOn(cluster.members[1])), []);
    });

    it("kill -9 of the leader under writes: a new leader, every acknowledged write on it, never two writable members, and the old leader rejoins through pg_rewind", async () => {
        const { leader: old } = await cluster.healthy(2);
        const load = new Load(cluster);
        const { writer, sampler } = load;
        await writer.waitForAcks(100);
        const killedAt = Date.now();
        await old.crash();
        const next = await waitFor("a new leader", 60000, async () => {
            const c = await cluster.cluster();
            const l = c.members.find((m: any) => m.role === "leader" && m.state === "running");
            return l && l.name !== old.name ? cluster.members.find((m) => m.name === l.name) : undefined;
        });
        await waitFor("writes acknowledged by the new leader", 60000, () => writer.firstAckAfter(killedAt + 1000));
        await writer.waitForAcks(100);
        await load.stop();
        const firstAfter = writer.firstAckAfter(killedAt + 1000)!;
        process.stderr.write(
            `      failover: first write acknowledged ${((firstAfter - killedAt) / 1000).toFixed(1)} s after kill -9; ${writer.acked.size} acknowledged\n`,
        );

        assert.deepStrictEqual(missingAcks(writer, idsOn(next)), [], "acknowledged writes missing on the new leader");
        assert.deepStrictEqual(sampler.splitBrain(), [], "samples with more than one writable member");
        assert.ok(sampler.samples.length > 20, `only ${sampler.samples.length} samples`);

        old.start();
        await cluster.healthy(2);
        await waitFor(
            "the old leader's pg_rewind",
            60000,
            () => /pg_rewind: Done!|running pg_rewind from/.test(old.log()) || undefined,
        );
        const digest = await sameRowsEverywhere();
        assert.deepStrictEqual(
            missingAcks(writer, idsOn(old)),
            [],
            "acknowledged writes missing on the rejoined member",
        );
        assert.ok(digest.count >= writer.acked.size);
    });

    it("a switchover moves the leader to the synchronous standby without losing a write", async () => {
        const { leader } = await cluster.healthy(2);
        const sync = leader.sql("SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'");
        const load = new Load(cluster);
        const { writer, sampler } = load;
        await writer.waitForAcks(50);
        const auth = `Basic ${Buffer.from(`patroni:${PASSWORDS.api}`).toString("base64")}`;
        const r = await leader.rest("/switchover", {
            method: "POST",
            headers: { Authorization: auth, "Content-Type": "application/json" },
            body: JSON.stringify({ leader: leader.name, candidate: sync }),
        });
        assert.strictEqual(r.status, 200, JSON.stringify(r.body));
        const unauthorised = await leader.rest("/switchover", {
            method: "POST",
            body: JSON.stringify({ leader: sync }),
        });
        assert.strictEqual(unauthorised.status, 401, "the REST API refuses a switchover without the password");
        await waitFor(
            `${sync} to lead`,
            60000,
            async () => (await cluster.healthy(1)).leader.name === sync || undefined,
        );
        await writer.waitForAcks(50);
        await load.stop();
        const now = cluster.members.find((m) => m.name === sync)!;
        assert.deepStrictEqual(missingAcks(writer, idsOn(now)), []);
        assert.deepStrictEqual(sampler.splitBrain(), []);
        await sameRowsEverywhere();
    });

    it("a leader that is being stopped (preStop) hands over to the synchronous standby first, then stops cleanly", async () => {
        const { leader } = await cluster.healthy(2);
        const sync = leader.sql("SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'");
        const load = new Load(cluster);
        const { writer, sampler } = load;
        await writer.waitForAcks(50);
        const hook = leader.podCommand(["pre-stop"]);
        assert.strictEqual(hook.status, 0, hook.stderr);
        assert.match(
            hook.stderr,
            new RegExp(`pre-stop: switching over from ${leader.name} to ${sync} before stopping`),
        );
        assert.match(hook.stderr, new RegExp(`pre-stop: ${sync} leads now`));
        await leader.stop();
        await writer.waitForAcks(50);
        await load.stop();
        const now = cluster.members.find((m) => m.name === sync)!;
        assert.deepStrictEqual(missingAcks(writer, idsOn(now)), []);
        assert.deepStrictEqual(sampler.splitBrain(), []);
        const rewindsBefore = (leader.log().match(/running pg_rewind from/g) ?? []).length;
        leader.start();
        await sameRowsEverywhere();
        assert.strictEqual(
            (leader.log().match(/running pg_rewind from/g) ?? []).length,
            rewindsBefore,
            "a clean handover needs no rewind",
        );
        // A replica's preStop does nothing.
        const replica = cluster.members.find((m) => m.name !== sync)!;
        const noop = replica.podCommand(["pre-stop"]);
        assert.strictEqual(noop.status, 0);
        assert.doesNotMatch(noop.stderr, /switching over/);
    });

    it("a leader stopped while its replicas are down (scale-down during a rolling update) waits for a member that stays, then hands over", async () => {
        const { leader } = await cluster.healthy(2);
        const others = cluster.members.filter((m) => m !== leader);
        const ns = cluster.namespace;
        // The StatefulSet the hook reads says the other members stay; they are down, as pods being replaced are.
        const staying = others[0];
        cluster.controlPlane.statefulSet(ns, cluster.members.length);
        try {
            const writer = new Writer(cluster.dsn(), 50);
            await writer.waitForAcks(20);
            for (const m of others) await m.stop();
            const hook = leader.podCommandAsync(["pre-stop"]);
            await sleep(5000);
            staying.start();
            const result = await hook;
            assert.strictEqual(result.status, 0, result.stderr);
            assert.match(
                result.stderr,
                /pre-stop: no replica to hand over to yet; waiting up to 50 s for one of the members that stay/,
            );
            assert.match(
                result.stderr,
                new RegExp(`pre-stop: switching over from ${leader.name} to ${staying.name} before stopping`),
            );
            assert.match(result.stderr, new RegExp(`pre-stop: ${staying.name} leads now`));
            await leader.stop();
            await writer.waitForAcks(20);
            await writer.stop();
            assert.deepStrictEqual(
                missingAcks(writer, idsOn(staying)),
                [],
                "every acknowledged write is on the member that leads now",
            );
        } finally {
            cluster.controlPlane.statefulSet(ns, undefined);
        }
        for (const m of cluster.members) if (!m.running) m.start();
        await sameRowsEverywhere();
    });

    it("a restart of every member keeps every row and the same system identifier", async () => {
        const { leader } = await cluster.healthy(2);
        const before = tableDigest(leader);
        const sysid = leader.sql("SELECT system_identifier FROM pg_control_system()");
        await cluster.stop();
        for (const m of cluster.members) m.start();
        const digest = await sameRowsEverywhere();
        assert.deepStrictEqual(digest, before);
        for (const m of cluster.members)
            assert.strictEqual(m.sql("SELECT system_identifier FROM pg_control_system()"), sysid, m.name);
    });
});
