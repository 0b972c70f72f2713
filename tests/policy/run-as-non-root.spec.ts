import * as assert from "node:assert";
import { runAsNonRoot } from "../../policy/policies/run-as-non-root";
import { runResourcePolicy } from "./harness";
import { deployment, deploymentPatch, migrationJob, mutated, stack, statefulSet, statefulSetPatch } from "./fixtures";

const API = "Deployment stateful-namespace/stateful-flask";
const apiContainer = (mutate: (c: any) => void) => [
    mutated(deployment(), (p) => mutate(p.spec.template.spec.containers[0])),
];

describe("policy run-as-non-root", () => {
    it("passes the compliant stack", async () => {
        assert.deepStrictEqual(await runResourcePolicy(runAsNonRoot, stack()), []);
    });

    it("reports a pod that does not set runAsNonRoot", async () => {
        const resources = [
            mutated(statefulSet(), (p) => {
                delete p.spec.template.spec.securityContext.runAsNonRoot;
            }),
        ];
        assert.deepStrictEqual(await runResourcePolicy(runAsNonRoot, resources), [
            {
                policy: "run-as-non-root",
                urn: undefined,
                message:
                    'StatefulSet postgres/postgres container "postgres" may run as root: neither the pod nor the container ' +
                    "securityContext sets runAsNonRoot: true. Set spec.template.spec.securityContext.runAsNonRoot: true (with a " +
                    "non-zero runAsUser when the image has no numeric USER).",
            },
        ]);
    });

    it("reports a container that overrides runAsNonRoot to false, and accepts one that sets it itself", async () => {
        assert.deepStrictEqual(
            (
                await runResourcePolicy(
                    runAsNonRoot,
                    apiContainer((c) => {
                        c.securityContext = { runAsNonRoot: false };
                    }),
                )
            ).map((v) => v.message),
            [
                `${API} container "api" may run as root: its securityContext sets runAsNonRoot: false. Set ` +
                    "spec.template.spec.securityContext.runAsNonRoot: true (with a non-zero runAsUser when the image has no numeric USER).",
            ],
        );
        const perContainer = [
            mutated(deployment(), (p) => {
                p.spec.template.spec.securityContext = {};
                for (const c of [...p.spec.template.spec.containers, ...p.spec.template.spec.initContainers]) {
                    c.securityContext = { runAsNonRoot: true, runAsUser: 10001 };
                }
            }),
        ];
        assert.deepStrictEqual(await runResourcePolicy(runAsNonRoot, perContainer), []);
    });

    it("reports runAsUser 0, and checks init containers and Jobs", async () => {
        const rootInit = [
            mutated(deployment(), (p) => {
                p.spec.template.spec.initContainers[0].securityContext = { runAsUser: 0 };
            }),
        ];
        assert.deepStrictEqual(
            (await runResourcePolicy(runAsNonRoot, rootInit)).map((v) => v.message),
            [
                `${API} init container "wait-for-db" sets runAsNonRoot: true but runAsUser: 0, so the kubelet refuses to start it. Use a non-zero runAsUser.`,
            ],
        );
        const rootJob = [
            mutated(migrationJob(), (p) => {
                delete p.spec.template.spec.securityContext;
            }),
        ];
        assert.strictEqual((await runResourcePolicy(runAsNonRoot, rootJob)).length, 1);
    });

    it("reports a patch that sets runAsNonRoot: false or runAsUser: 0, and passes one that sets neither", async () => {
        const podRoot = deploymentPatch({ template: { spec: { securityContext: { runAsNonRoot: false } } } });
        assert.deepStrictEqual(
            (await runResourcePolicy(runAsNonRoot, [...stack(), podRoot])).map((v) => v.message),
            [
                "DeploymentPatch stateful-namespace/stateful-flask sets runAsNonRoot: false in the pod securityContext, so its containers " +
                    "may run as root. Remove it, or set runAsNonRoot: true with a non-zero runAsUser.",
            ],
        );
        const containerRoot = statefulSetPatch({
            template: { spec: { containers: [{ name: "postgres", securityContext: { runAsUser: 0 } }] } },
        });
        assert.deepStrictEqual(
            (await runResourcePolicy(runAsNonRoot, [...stack(), containerRoot])).map((v) => v.message),
            [
                'StatefulSetPatch postgres/postgres container "postgres" sets runAsUser: 0 in its securityContext, so it may run as root. ' +
                    "Remove it, or set runAsNonRoot: true with a non-zero runAsUser.",
            ],
        );
        const imageOnly = deploymentPatch({
            template: {
                spec: {
                    containers: [{ name: "api", image: "registry.digitalocean.com/drexii/stateful-flask:v1.1.0" }],
                },
            },
        });
        assert.deepStrictEqual(await runResourcePolicy(runAsNonRoot, [...stack(), imageOnly]), []);
    });
});
