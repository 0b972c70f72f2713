/**
 * Scaling Postgres and the API together, under writes through the API: 1→3 (each new replica clones the leader
 * and holds every row), then 3→1→3 (the replicas resume from their own volumes: same PVCs, the same data files,
 * no new clone). Every write acknowledged with 201 during the rollouts is present.
 */
import * as assert from "node:assert";
import { key } from "../../scripts/local/driver";
import {
    ApiWriter,
    NS,
    claims,
    configure,
    converge,
    healthy,
    inPostgres,
    k,
    postgresPods,
    psql,
    rowsEverywhere,
    up,
} from "./fixture";

/** The inode of a member's PG_VERSION: a new clone writes a new file, a resumed member keeps its own. */
async function dataIdentity(pod: string): Promise<string> {
    return (await inPostgres(pod, ["stat", "-c", "%i %Y", "/var/lib/postgresql/data/pgdata/PG_VERSION"])).trim();
}

describe("e2e 03: scaling Postgres and the API together under writes", function () {
    before(async () => {
        await converge();
    });

    after(async () => {
        await converge();
    });

    it("1 → 3: each new replica clones the leader, streams (one synchronously), and holds every row; every 201 is present", async () => {
        const writer = new ApiWriter("scale 1→3");
        await writer.waitForAcks(10);
        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        const { leader, replicas } = await healthy();
        assert.deepStrictEqual(replicas.length, 2);
        await writer.waitForAcks(20);
        await writer.stop();
        const sync = await psql(leader, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'");
        assert.strictEqual(sync, "1", "one synchronous standby");
        const rows = await rowsEverywhere();
        assert.deepStrictEqual(writer.missingFrom(rows), []);
        assert.strictEqual((await postgresPods()).length, 3);
    });

    it("3 → 1 → 3: the replicas come back on their own volumes without a new clone; every 201 is present", async () => {
        const before = await claims();
        const identity = {
            "postgres-1": await dataIdentity("postgres-1"),
            "postgres-2": await dataIdentity("postgres-2"),
        };
        const writer = new ApiWriter("scale 3→1→3");
        await writer.waitForAcks(10);
        await configure({ [key("postgresReplicas")]: "1", [key("apiReplicas")]: "1" });
        await up();
        const down = await healthy();
        assert.strictEqual(
            down.leader,
            "postgres-0",
            "scaling down removes the highest ordinals; the leader moved to a survivor",
        );
        assert.deepStrictEqual(
            Object.keys(await claims()).sort(),
            Object.keys(before).sort(),
            "scaling down keeps the PVCs",
        );
        await writer.waitForAcks(10);
        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        await healthy();
        await writer.waitForAcks(10);
        await writer.stop();
        assert.deepStrictEqual(await claims(), before, "the same PVCs bound to the same volumes");
        assert.strictEqual(
            await dataIdentity("postgres-1"),
            identity["postgres-1"],
            "postgres-1 resumed from its own data",
        );
        assert.strictEqual(
            await dataIdentity("postgres-2"),
            identity["postgres-2"],
            "postgres-2 resumed from its own data",
        );
        const rows = await rowsEverywhere();
        assert.deepStrictEqual(writer.missingFrom(rows), []);
        const logs = await k(["logs", "-n", NS, "postgres-1", "-c", "postgres"]);
        assert.doesNotMatch(
            logs,
            /trying to bootstrap from leader|bootstrap from leader .* in progress/,
            "postgres-1 did not clone again",
        );
    });
});
