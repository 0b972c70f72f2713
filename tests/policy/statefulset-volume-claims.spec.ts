import * as assert from "node:assert";
import { defaults, statefulsetVolumeClaims } from "../../policy/policies/statefulset-volume-claims";
import { runResourcePolicy } from "./harness";
import { mutated, stack, statefulSet } from "./fixtures";

const NAME = "statefulset-volume-claims";
const VCT = `StatefulSet postgres/postgres volumeClaimTemplate "postgredb-volume"`;
const withClaim = (mutate: (spec: any) => void) => [
    mutated(statefulSet(), (p) => mutate(p.spec.volumeClaimTemplates[0].spec)),
];

describe("policy statefulset-volume-claims", () => {
    it("passes the compliant stack, and ignores everything but StatefulSets", async () => {
        assert.deepStrictEqual(await runResourcePolicy(statefulsetVolumeClaims, stack()), []);
    });

    it("defaults to DigitalOcean's block-storage classes and ReadWriteOnce", () => {
        assert.deepStrictEqual(defaults.allowedStorageClasses, [
            "do-block-storage",
            "do-block-storage-retain",
            "do-block-storage-xfs",
            "do-block-storage-xfs-retain",
        ]);
        assert.deepStrictEqual(defaults.allowedAccessModes, ["ReadWriteOnce"]);
    });

    it("reports a StatefulSet without volumeClaimTemplates", async () => {
        const resources = [
            mutated(statefulSet(), (p) => {
                delete p.spec.volumeClaimTemplates;
            }),
        ];
        assert.deepStrictEqual(await runResourcePolicy(statefulsetVolumeClaims, resources), [
            {
                policy: NAME,
                urn: undefined,
                message:
                    "StatefulSet postgres/postgres has no volumeClaimTemplates, so its data lives on the pod's ephemeral " +
                    "storage or on a volume the replicas share, and is lost or corrupted when a pod moves. Add a " +
                    "volumeClaimTemplate so each replica gets its own PersistentVolumeClaim.",
            },
        ]);
    });

    it("reports an access mode other than ReadWriteOnce, and an empty list", async () => {
        assert.deepStrictEqual(
            (
                await runResourcePolicy(
                    statefulsetVolumeClaims,
                    withClaim((s) => {
                        s.accessModes = ["ReadWriteMany"];
                    }),
                )
            ).map((v) => v.message),
            [
                `${VCT} requests access modes [ReadWriteMany]; allowed: [ReadWriteOnce]. A database volume must be mounted ` +
                    "read-write by a single node at a time.",
            ],
        );
        assert.deepStrictEqual(
            (
                await runResourcePolicy(
                    statefulsetVolumeClaims,
                    withClaim((s) => {
                        s.accessModes = [];
                    }),
                )
            ).map((v) => v.message),
            [
                `${VCT} requests access modes []; allowed: [ReadWriteOnce]. A database volume must be mounted read-write by a single node at a time.`,
            ],
        );
    });

    it("reports a missing storageClassName", async () => {
        assert.deepStrictEqual(
            (
                await runResourcePolicy(
                    statefulsetVolumeClaims,
                    withClaim((s) => {
                        delete s.storageClassName;
                    }),
                )
            ).map((v) => v.message),
            [
                `${VCT} sets no storageClassName, so it gets whatever the cluster's default class is, which may not exist ` +
                    'elsewhere or may not be block storage. Set storageClassName to one of: "do-block-storage", ' +
                    '"do-block-storage-retain", "do-block-storage-xfs", "do-block-storage-xfs-retain".',
            ],
        );
    });

    it("reports a storage class outside the allowed list, and accepts it once configured", async () => {
        const resources = withClaim((s) => {
            s.storageClassName = "standard";
        });
        assert.deepStrictEqual(
            (await runResourcePolicy(statefulsetVolumeClaims, resources)).map((v) => v.message),
            [
                `${VCT} uses storageClassName "standard", which is not in the allowed list ("do-block-storage", ` +
                    '"do-block-storage-retain", "do-block-storage-xfs", "do-block-storage-xfs-retain"). Use one of those, or add ' +
                    "the class to allowedStorageClasses in the policy config.",
            ],
        );
        const config = { allowedStorageClasses: [...defaults.allowedStorageClasses, "standard"] };
        assert.deepStrictEqual(await runResourcePolicy(statefulsetVolumeClaims, resources, config), []);
    });
});
