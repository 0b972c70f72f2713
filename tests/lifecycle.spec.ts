import * as assert from "node:assert";
import { evaluate, type ProgramResource } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

/** What identifies the data: if any of these change, existing volumes are no longer found. */
function dataIdentity(resources: ProgramResource[]) {
    const sts = one(resources, T.statefulSet, "postgres");
    return {
        logicalName: sts.name,
        name: sts.inputs.metadata.name,
        namespace: sts.inputs.metadata.namespace,
        selector: sts.inputs.spec.selector,
        serviceName: sts.inputs.spec.serviceName,
        claimTemplate: sts.inputs.spec.volumeClaimTemplates[0].metadata.name,
        storageClass: sts.inputs.spec.volumeClaimTemplates[0].spec.storageClassName,
        accessModes: sts.inputs.spec.volumeClaimTemplates[0].spec.accessModes,
        headless: one(resources, T.service, "postgres-headless").inputs.metadata.name,
        protect: sts.protect,
    };
}

describe("lifecycle: config changes change what they should, never the data's identity", () => {
    let base: ProgramResource[];
    before(async () => {
        base = (await evaluate("dev")).resources;
    });

    it("a new API image tag gives a new migration Job and a new Deployment image, same StatefulSet", async () => {
        const next = (
            await evaluate("dev", {
                "stateful-flask:apiImage": "registry.digitalocean.com/drexii/stateful-flask:v1.1.0",
            })
        ).resources;
        assert.deepStrictEqual(dataIdentity(next), dataIdentity(base));
        assert.notStrictEqual(all(next, T.job)[0].inputs.metadata.name, all(base, T.job)[0].inputs.metadata.name);
        assert.strictEqual(
            one(next, T.deployment).inputs.spec.template.spec.containers[0].image,
            "registry.digitalocean.com/drexii/stateful-flask:v1.1.0",
        );
        assert.deepStrictEqual(
            one(next, T.statefulSet).inputs.spec.template,
            one(base, T.statefulSet).inputs.spec.template,
        );
    });

    it("rolling back to the previous tag gives back the previous Job name", async () => {
        const forward = (
            await evaluate("dev", {
                "stateful-flask:apiImage": "registry.digitalocean.com/drexii/stateful-flask:v1.1.0",
            })
        ).resources;
        const back = (await evaluate("dev")).resources;
        assert.notStrictEqual(all(forward, T.job)[0].inputs.metadata.name, all(back, T.job)[0].inputs.metadata.name);
        assert.strictEqual(all(back, T.job)[0].inputs.metadata.name, all(base, T.job)[0].inputs.metadata.name);
    });

    it("scaling to 3 changes both replica counts and adds PVC size patches for ordinals 1 and 2", async () => {
        const next = (
            await evaluate("dev", { "stateful-flask:postgresReplicas": "3", "stateful-flask:apiReplicas": "3" })
        ).resources;
        assert.deepStrictEqual(dataIdentity(next), dataIdentity(base));
        assert.strictEqual(one(next, T.statefulSet).inputs.spec.replicas, 3);
        assert.strictEqual(one(next, T.deployment).inputs.spec.replicas, 3);
        assert.deepStrictEqual(
            all(next, T.pvcPatch).map((p) => p.inputs.metadata.name),
            ["postgredb-volume-postgres-0", "postgredb-volume-postgres-1", "postgredb-volume-postgres-2"],
        );
        assert.deepStrictEqual(
            all(next, T.pvcPatch).map((p) => p.name),
            [
                "postgres-postgredb-volume-postgres-0-size",
                "postgres-postgredb-volume-postgres-1-size",
                "postgres-postgredb-volume-postgres-2-size",
            ],
        );
    });

    it("a storage size change resizes the PVCs and leaves the StatefulSet's identity alone", async () => {
        const next = (await evaluate("dev", { "stateful-flask:postgresStorageSize": "20Gi" })).resources;
        assert.deepStrictEqual(dataIdentity(next), dataIdentity(base));
        const sts = one(next, T.statefulSet);
        // The template carries the new size for a fresh StatefulSet, but the engine ignores that field on an
        // existing one (immutable; a change would replace the StatefulSet).
        assert.deepStrictEqual(sts.ignoreChanges, ["spec.volumeClaimTemplates[0].spec.resources"]);
        assert.deepStrictEqual(
            all(next, T.pvcPatch).map((p) => p.inputs.spec.resources.requests.storage),
            ["20Gi"],
        );
        assert.deepStrictEqual(
            all(next, T.pvcPatch).map((p) => p.name),
            all(base, T.pvcPatch).map((p) => p.name),
        );
    });

    it("turning protection off for a throwaway stack still never renames anything", async () => {
        const next = (await evaluate("dev", { "stateful-flask:protectData": "false" })).resources;
        const { protect, ...rest } = dataIdentity(next);
        const { protect: baseProtect, ...baseRest } = dataIdentity(base);
        assert.strictEqual(protect, false);
        assert.strictEqual(baseProtect, true);
        assert.deepStrictEqual(rest, baseRest);
        assert.strictEqual(one(next, T.namespace, "postgres").retainOnDelete, false);
    });
});
