import * as assert from "node:assert";
import { readinessProbeRequired } from "../../policy/policies/readiness-probe-required";
import { runResourcePolicy } from "./harness";
import { deployment, deploymentPatch, migrationJob, mutated, stack, statefulSet } from "./fixtures";

const API = "Deployment stateful-namespace/stateful-flask";
const apiContainer = (mutate: (c: any) => void) => [
    mutated(deployment(), (p) => mutate(p.spec.template.spec.containers[0])),
];

describe("policy readiness-probe-required", () => {
    it("passes the compliant stack, where the migration Job has no probe", async () => {
        assert.deepStrictEqual(await runResourcePolicy(readinessProbeRequired, stack()), []);
    });

    it("reports a long-running container without a readinessProbe", async () => {
        assert.deepStrictEqual(
            await runResourcePolicy(
                readinessProbeRequired,
                apiContainer((c) => {
                    delete c.readinessProbe;
                }),
            ),
            [
                {
                    policy: "readiness-probe-required",
                    urn: undefined,
                    message:
                        `${API} container "api" has no readinessProbe, so Services send it traffic before it can serve and ` +
                        "rolling updates do not wait for it. Add a readinessProbe (httpGet, tcpSocket, exec or grpc).",
                },
            ],
        );
        const sts = [
            mutated(statefulSet(), (p) => {
                delete p.spec.template.spec.containers[0].readinessProbe;
            }),
        ];
        assert.deepStrictEqual(
            (await runResourcePolicy(readinessProbeRequired, sts)).map((v) => v.message.split(" has ")[0]),
            ['StatefulSet postgres/postgres container "postgres"'],
        );
    });

    it("checks Jobs only when configured to", async () => {
        const violations = await runResourcePolicy(readinessProbeRequired, [migrationJob()], { kinds: ["Job"] });
        assert.deepStrictEqual(
            violations.map((v) => v.message.split(" has ")[0]),
            ['Job stateful-namespace/stateful-flask-migrate-adb446bb56 container "migrate"'],
        );
    });

    it("does not ask a patch for a probe it leaves out: the object keeps its own", async () => {
        const imageOnly = deploymentPatch({
            template: {
                spec: {
                    containers: [{ name: "api", image: "registry.digitalocean.com/drexii/stateful-flask:v1.1.0" }],
                },
            },
        });
        assert.deepStrictEqual(await runResourcePolicy(readinessProbeRequired, [...stack(), imageOnly]), []);
    });
});
