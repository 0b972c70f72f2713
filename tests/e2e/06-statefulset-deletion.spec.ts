/**
 * Someone deletes the StatefulSet (`kubectl delete statefulset postgres`, which takes its pods along); `pulumi up
 * --refresh` recreates it with the same name and claim template, and its pods bind the same PVCs: same UIDs, same
 * volumes, every row.
 */
import * as assert from "node:assert";
import { NS, claims, converge, get, healthy, k, postTask, rowsEverywhere, up } from "./fixture";

describe("e2e 06: a deleted StatefulSet comes back on the same volumes", function () {
    before(async () => {
        await converge();
        for (let i = 0; i < 10; i++)
            assert.strictEqual((await postTask(`before the deletion ${i}`, "seed")).status, 201);
    });

    it("kubectl delete statefulset postgres, then pulumi up --refresh: same PVC UIDs and volumes, rows intact", async () => {
        const rows = await rowsEverywhere();
        const before = await claims();
        const uid = (await get(["statefulset", "postgres", "-n", NS])).metadata.uid;
        await k(["delete", "statefulset", "postgres", "-n", NS, "--wait=true", "--timeout=180s"]);
        assert.strictEqual(await get(["statefulset", "postgres", "-n", NS]), undefined);
        assert.deepStrictEqual(await claims(), before, "deleting the StatefulSet keeps its PVCs (Retain)");
        const result = await up({ refresh: true });
        assert.ok(
            (result.summary.resourceChanges?.create ?? 0) >= 1,
            `the StatefulSet is recreated: ${JSON.stringify(result.summary.resourceChanges)}`,
        );
        await healthy();
        assert.notStrictEqual(
            (await get(["statefulset", "postgres", "-n", NS])).metadata.uid,
            uid,
            "a new StatefulSet object",
        );
        assert.deepStrictEqual(await claims(), before, "the same PVCs, bound to the same volumes");
        assert.deepStrictEqual(await rowsEverywhere(), rows);
    });
});
