import * as assert from "node:assert";
import { resourceRequestsRequired } from "../../policy/policies/resource-requests-required";
import { runResourcePolicy } from "./harness";
import { deployment, mutated, stack, statefulSet } from "./fixtures";

const API = "Deployment stateful-namespace/stateful-flask";
const apiContainer = (mutate: (c: any) => void) => [
    mutated(deployment(), (p) => mutate(p.spec.template.spec.containers[0])),
];

describe("policy resource-requests-required", () => {
    it("passes the compliant stack", async () => {
        assert.deepStrictEqual(await runResourcePolicy(resourceRequestsRequired, stack()), []);
    });

    it("reports a container without requests", async () => {
        assert.deepStrictEqual(
            await runResourcePolicy(
                resourceRequestsRequired,
                apiContainer((c) => {
                    delete c.resources;
                }),
            ),
            [
                {
                    policy: "resource-requests-required",
                    urn: undefined,
                    message:
                        `${API} container "api" requests no cpu or memory, so the scheduler can place it on a node without ` +
                        "room for it and it is among the first evicted under pressure. Set resources.requests.cpu and resources.requests.memory.",
                },
            ],
        );
    });

    it("reports the one missing request, limits do not count", async () => {
        const onlyLimits = [
            mutated(statefulSet(), (p) => {
                p.spec.template.spec.containers[0].resources = { requests: { cpu: "250m" }, limits: { memory: "1Gi" } };
            }),
        ];
        assert.deepStrictEqual(
            (await runResourcePolicy(resourceRequestsRequired, onlyLimits)).map((v) => v.message),
            [
                'StatefulSet postgres/postgres container "postgres" requests no memory, so the scheduler can place it on a node ' +
                    "without room for it and it is among the first evicted under pressure. Set resources.requests.memory.",
            ],
        );
        assert.deepStrictEqual(
            await runResourcePolicy(resourceRequestsRequired, onlyLimits, { resources: ["cpu"] }),
            [],
        );
    });
});
