import * as assert from "node:assert";
import { statefulsetHeadlessService } from "../../policy/policies/statefulset-headless-service";
import { runStackPolicy, urnOf } from "./harness";
import { headlessService, stack, stackWith, statefulSet } from "./fixtures";

const NAME = "statefulset-headless-service";
const STS = "StatefulSet postgres/postgres";
const SVC = "Service postgres/postgres-headless";

describe("policy statefulset-headless-service", () => {
    it("passes the compliant stack", async () => {
        assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, stack()), []);
    });

    it("reports a StatefulSet without serviceName (unless requireServiceName is false)", async () => {
        const resources = stackWith("postgres-statefulset", (p) => {
            delete p.spec.serviceName;
        });
        assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, resources), [
            {
                policy: NAME,
                urn: urnOf(statefulSet()),
                message:
                    `${STS} sets no spec.serviceName, so its pods get no stable DNS names (<pod>.<service>) and clients and ` +
                    `replicas cannot address a given member. Set serviceName to a headless Service in namespace "postgres".`,
            },
        ]);
        assert.deepStrictEqual(
            await runStackPolicy(statefulsetHeadlessService, resources, { requireServiceName: false }),
            [],
        );
    });

    it("reports a serviceName with no Service of that name in the stack", async () => {
        const resources = stackWith("postgres-statefulset", (p) => {
            p.spec.serviceName = "postgres-hl";
        });
        assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, resources), [
            {
                policy: NAME,
                urn: urnOf(statefulSet()),
                message:
                    `${STS} names serviceName "postgres-hl", but the stack has no Service "postgres-hl" in namespace "postgres", ` +
                    "so its pods get no DNS records. Create a Service with that name, clusterIP: None and a selector matching the " +
                    "pod template, in the same namespace.",
            },
        ]);
    });

    it("reports a Service of that name in another namespace as missing", async () => {
        const resources = stackWith("postgres-headless-service", (p) => {
            p.metadata.namespace = "default";
        });
        const violations = await runStackPolicy(statefulsetHeadlessService, resources);
        assert.strictEqual(violations.length, 1);
        assert.match(
            violations[0].message,
            /names serviceName "postgres-headless", but the stack has no Service "postgres-headless" in namespace "postgres"/,
        );
    });

    it("reports a serviceName Service that is not headless", async () => {
        for (const [clusterIP, shown] of [
            [undefined, "unset"],
            ["10.245.0.17", '"10.245.0.17"'],
        ] as const) {
            const resources = stackWith("postgres-headless-service", (p) => {
                p.spec.clusterIP = clusterIP;
            });
            assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, resources), [
                {
                    policy: NAME,
                    urn: urnOf(headlessService()),
                    message:
                        `${SVC}, the serviceName of ${STS}, is not headless (spec.clusterIP is ${shown}): it load-balances over ` +
                        "a virtual IP instead of publishing one DNS record per pod. Set spec.clusterIP: None (clusterIP is " +
                        "immutable: the Service is replaced).",
                },
            ]);
        }
    });

    it("reports a headless Service whose selector does not match the pod labels", async () => {
        const resources = stackWith("postgres-headless-service", (p) => {
            p.spec.selector = { app: "postgresql" };
        });
        assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, resources), [
            {
                policy: NAME,
                urn: urnOf(headlessService()),
                message:
                    `${SVC} selects {app=postgresql}, but the pods of ${STS} are labelled {app=postgres, ` +
                    "app.kubernetes.io/component=database, app.kubernetes.io/managed-by=pulumi, app.kubernetes.io/name=postgres, " +
                    "app.kubernetes.io/part-of=stateful-flask}, so the headless Service publishes no (or other) pods. Make the " +
                    "selector a subset of spec.template.metadata.labels.",
            },
        ]);
    });

    it("reports a headless Service without a selector", async () => {
        const resources = stackWith("postgres-headless-service", (p) => {
            delete p.spec.selector;
        });
        assert.deepStrictEqual(await runStackPolicy(statefulsetHeadlessService, resources), [
            {
                policy: NAME,
                urn: urnOf(headlessService()),
                message:
                    `${SVC}, the serviceName of ${STS}, has no selector, so Kubernetes publishes no records for the ` +
                    "StatefulSet's pods. Set spec.selector to labels of the pod template, e.g. {app=postgres}.",
            },
        ]);
    });
});
