import * as assert from "node:assert";
import { statefulsetPvcRetention } from "../../policy/policies/statefulset-pvc-retention";
import { runResourcePolicy } from "./harness";
import { mutated, stack, statefulSet, statefulSetPatch } from "./fixtures";

const NAME = "statefulset-pvc-retention";
const STS = "StatefulSet postgres/postgres";
const withPolicy = (policy: any) => [
    mutated(statefulSet(), (p) => {
        p.spec.persistentVolumeClaimRetentionPolicy = policy;
    }),
];

describe("policy statefulset-pvc-retention", () => {
    it("passes the compliant stack (Retain/Retain)", async () => {
        assert.deepStrictEqual(await runResourcePolicy(statefulsetPvcRetention, stack()), []);
    });

    it("reports whenDeleted: Delete", async () => {
        assert.deepStrictEqual(
            await runResourcePolicy(
                statefulsetPvcRetention,
                withPolicy({ whenDeleted: "Delete", whenScaled: "Retain" }),
            ),
            [
                {
                    policy: NAME,
                    urn: undefined,
                    message:
                        `${STS} sets persistentVolumeClaimRetentionPolicy.whenDeleted: Delete, so deleting the StatefulSet ` +
                        "(pulumi destroy, or a replacement) deletes its PersistentVolumeClaims and, with a Delete reclaim policy, " +
                        "the data. Set whenDeleted: Retain.",
                },
            ],
        );
    });

    it("reports whenScaled: Delete", async () => {
        assert.deepStrictEqual(
            (
                await runResourcePolicy(
                    statefulsetPvcRetention,
                    withPolicy({ whenDeleted: "Retain", whenScaled: "Delete" }),
                )
            ).map((v) => v.message),
            [
                `${STS} sets persistentVolumeClaimRetentionPolicy.whenScaled: Delete, so scaling down deletes the claims (and ` +
                    "data) of the removed replicas. Set whenScaled: Retain.",
            ],
        );
    });

    it("accepts an unset policy (Kubernetes retains) unless requireExplicit is set", async () => {
        assert.deepStrictEqual(await runResourcePolicy(statefulsetPvcRetention, withPolicy(undefined)), []);
        assert.deepStrictEqual(
            (await runResourcePolicy(statefulsetPvcRetention, withPolicy(undefined), { requireExplicit: true })).map(
                (v) => v.message,
            ),
            [
                `${STS} leaves persistentVolumeClaimRetentionPolicy unset; Kubernetes retains claims today, but the intent is ` +
                    "not recorded. Set whenDeleted: Retain and whenScaled: Retain explicitly.",
            ],
        );
    });

    it("reports a StatefulSetPatch that sets whenDeleted: Delete, and passes one that leaves the policy out", async () => {
        const patch = statefulSetPatch({ persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete" } });
        assert.deepStrictEqual(
            (await runResourcePolicy(statefulsetPvcRetention, [...stack(), patch])).map((v) => v.message),
            [
                "StatefulSetPatch postgres/postgres sets persistentVolumeClaimRetentionPolicy.whenDeleted: Delete, so deleting the StatefulSet " +
                    "(pulumi destroy, or a replacement) deletes its PersistentVolumeClaims and, with a Delete reclaim policy, the data. Set whenDeleted: Retain.",
            ],
        );
        const other = statefulSetPatch({ replicas: 1 });
        assert.deepStrictEqual(
            await runResourcePolicy(statefulsetPvcRetention, [...stack(), other], { requireExplicit: true }),
            [],
        );
    });
});
