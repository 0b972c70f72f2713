/**
 * Upgrades and the rollback, on the rows: the API image v1 → v2 with a schema migration (the migration Job runs
 * against the real database), back to v1 (v1 serves, the rows stay, the schema stays at v2 as the rollback design
 * says: docs/app.md), and a rebuilt Postgres image rolled over three members one pod at a time, the leader moved
 * by switchovers (no member needs pg_rewind afterwards, which a crash of the leader would leave).
 */
import * as assert from "node:assert";
import { key } from "../../scripts/local/driver";
import {
    API,
    API_NS,
    ApiWriter,
    IMAGE_V1,
    IMAGE_V2,
    NS,
    POSTGRES_IMAGE_REBUILT,
    configure,
    converge,
    get,
    healthy,
    k,
    postTask,
    postgresPods,
    psql,
    rowsEverywhere,
    up,
} from "./fixture";

describe("e2e 05: upgrades and rollback, proven on the rows", function () {
    before(async () => {
        await converge();
        for (let i = 0; i < 10; i++) assert.strictEqual((await postTask(`before upgrades ${i}`, "seed")).status, 201);
    });

    after(async () => {
        await converge();
    });

    it("API v1 → v2: the migration Job adds the priority column, v2 serves, the rows stay", async () => {
        const before = await rowsEverywhere();
        const writer = new ApiWriter("api upgrade");
        await writer.waitForAcks(10);
        await configure({ [key("apiImage")]: IMAGE_V2 });
        const result = await up();
        await healthy();
        await writer.waitForAcks(10);
        await writer.stop();
        const job = result.outputs.migrationJob.value as string;
        assert.strictEqual((await get(["job", job, "-n", API_NS])).status.succeeded, 1);
        const { leader } = await healthy();
        assert.strictEqual(await psql(leader, "SELECT version_num FROM alembic_version"), "c4d1e2f3a4b5");
        assert.strictEqual(
            await psql(
                leader,
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'task' AND column_name = 'priority'",
            ),
            "1",
        );
        const images = (await get(["deployment", API, "-n", API_NS])).spec.template.spec.containers.map(
            (c: any) => c.image,
        );
        assert.deepStrictEqual(images, [IMAGE_V2]);
        const rows = await rowsEverywhere();
        assert.deepStrictEqual(writer.missingFrom(rows), []);
        assert.ok(
            before.ids.every((id) => rows.ids.includes(id)),
            "rows from before the upgrade are kept",
        );
    });

    it("rollback v2 → v1: v1's Job leaves the newer schema alone, v1 serves, every row stays", async () => {
        const before = await rowsEverywhere();
        await configure({ [key("apiImage")]: IMAGE_V1 });
        const result = await up();
        await healthy();
        const job = result.outputs.migrationJob.value as string;
        assert.strictEqual((await get(["job", job, "-n", API_NS])).status.succeeded, 1);
        const logs = await k(["logs", "-n", API_NS, `job/${job}`]);
        assert.match(logs, /rollback/i, "release-migrate says it leaves the newer schema alone");
        const { leader } = await healthy();
        assert.strictEqual(
            await psql(leader, "SELECT version_num FROM alembic_version"),
            "c4d1e2f3a4b5",
            "the schema stays at v2",
        );
        assert.strictEqual((await postTask("written by v1 after the rollback")).status, 201);
        const rows = await rowsEverywhere();
        assert.ok(before.ids.every((id) => rows.ids.includes(id)));
        assert.strictEqual(rows.count, before.count + 1);
    });

    it("a rebuilt Postgres image over three members: one pod at a time, the leader moved by switchovers, every 201 present", async () => {
        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        await healthy();
        const writer = new ApiWriter("postgres image rollout");
        await writer.waitForAcks(10);
        let maxNotReady = 0;
        let watching = true;
        const watch = (async () => {
            while (watching) {
                const pods = await postgresPods().catch(() => []);
                const ready = pods.filter((p) =>
                    (p.status.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True"),
                ).length;
                maxNotReady = Math.max(maxNotReady, 3 - ready);
                await new Promise((r) => setTimeout(r, 1000));
            }
        })();
        await configure({ [key("postgresImage")]: POSTGRES_IMAGE_REBUILT });
        await up();
        const sts = (await get(["statefulset", "postgres", "-n", NS])).status;
        process.stderr.write(
            `      after up: updateRevision ${sts.updateRevision === sts.currentRevision ? "=" : "!="} currentRevision, ${sts.updatedReplicas}/3 updated\n`,
        );
        await healthy();
        watching = false;
        await watch;
        await writer.waitForAcks(10);
        await writer.stop();
        for (const p of await postgresPods()) {
            assert.strictEqual(p.spec.containers[0].image, POSTGRES_IMAGE_REBUILT, p.metadata.name);
            const log = await k(["logs", "-n", NS, p.metadata.name, "-c", "postgres"]);
            assert.doesNotMatch(
                log,
                /running pg_rewind/,
                `${p.metadata.name} needed pg_rewind: a leader stopped without handing over`,
            );
        }
        assert.strictEqual(maxNotReady, 1, "at most one Postgres pod was down at a time");
        const rows = await rowsEverywhere();
        assert.deepStrictEqual(writer.missingFrom(rows), []);
    });
});
