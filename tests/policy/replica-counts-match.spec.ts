import * as assert from "node:assert";
import { defaults, replicaCountsMatch } from "../../policy/policies/replica-counts-match";
import { type FakeResource, UNKNOWN, UnknownValueError, type Violation, runStackPolicy, urnOf } from "./harness";
import { T, deployment, deploymentPatch, mutated, stack, stackWith, statefulSet, statefulSetPatch } from "./fixtures";
import { REPLICA_LIMITS } from "../../components/validate";
import { evaluate } from "../helpers/program";

const NAME = "replica-counts-match";
const API = "Deployment stateful-namespace/stateful-flask";
const DB = "StatefulSet postgres/postgres";
const API_URN = urnOf(deployment());

function hpa(
    name: string,
    namespace: string,
    target: { kind: string; name: string },
    min: number | undefined,
    max: number,
    type: string = T.hpa,
): FakeResource {
    return {
        type,
        name: `${name}-hpa`,
        props: {
            metadata: { name, namespace },
            spec: { scaleTargetRef: { apiVersion: "apps/v1", ...target }, minReplicas: min, maxReplicas: max },
        },
    };
}

/** A second app in the same stack: its own part-of group, in its own namespaces. */
function secondApp(apiReplicas: number, dbReplicas: number): FakeResource[] {
    const relabel = (p: any) => {
        for (const labels of [p.metadata.labels, p.spec.template.metadata.labels]) {
            labels["app.kubernetes.io/part-of"] = "billing";
        }
    };
    return [
        mutated(deployment(), (p) => {
            relabel(p);
            p.metadata.name = "billing-api";
            p.metadata.namespace = "billing";
            p.spec.replicas = apiReplicas;
        }),
        mutated(statefulSet(), (p) => {
            relabel(p);
            p.metadata.name = "billing-db";
            p.metadata.namespace = "billing";
            p.spec.replicas = dbReplicas;
        }),
    ].map((r, i) => ({ ...r, name: `billing-${i}` }));
}

describe("policy replica-counts-match", () => {
    it("passes the compliant stack", async () => {
        assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, stack()), []);
    });

    it("is a mandatory stack policy by default", () => {
        assert.strictEqual(replicaCountsMatch.name, NAME);
        assert.strictEqual(replicaCountsMatch.enforcementLevel, "mandatory");
    });

    it("reports an API with more replicas than its database, naming both, both counts and the fix", async () => {
        const violations = await runStackPolicy(
            replicaCountsMatch,
            stackWith("api-deployment", (p) => {
                p.spec.replicas = 3;
            }),
        );
        assert.deepStrictEqual(violations, [
            {
                policy: NAME,
                urn: API_URN,
                message:
                    `${API} runs 3 replicas but ${DB}, the database it is paired with by ` +
                    "app.kubernetes.io/part-of=stateful-flask, runs 1 replica. Give both the same spec.replicas: " +
                    "`pulumi config set apiReplicas 1` to follow the database, or `pulumi config set postgresReplicas 3` to follow the API.",
            },
        ]);
    });

    it("reports a database with more replicas than the API", async () => {
        const violations = await runStackPolicy(
            replicaCountsMatch,
            stackWith("postgres-statefulset", (p) => {
                p.spec.replicas = 2;
            }),
        );
        assert.deepStrictEqual(
            violations.map((v) => v.message),
            [
                `${API} runs 1 replica but ${DB}, the database it is paired with by app.kubernetes.io/part-of=stateful-flask, ` +
                    "runs 2 replicas. Give both the same spec.replicas: `pulumi config set apiReplicas 2` to follow the database, " +
                    "or `pulumi config set postgresReplicas 1` to follow the API.",
            ],
        );
    });

    it("counts unset replicas as 1, as Kubernetes does", async () => {
        const unsetApi = stackWith("api-deployment", (p) => {
            delete p.spec.replicas;
        });
        assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, unsetApi), []);

        const unsetBoth = stackWith("api-deployment", (p) => {
            delete p.spec.replicas;
        }).map((r) =>
            r.name === "postgres-statefulset"
                ? mutated(r, (p) => {
                      p.spec.replicas = null;
                  })
                : r,
        );
        assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, unsetBoth), []);

        const nullDbApiTwo = stackWith("postgres-statefulset", (p) => {
            p.spec.replicas = null;
        }).map((r) =>
            r.name === "api-deployment"
                ? mutated(r, (p) => {
                      p.spec.replicas = 2;
                  })
                : r,
        );
        assert.match(
            (await runStackPolicy(replicaCountsMatch, nullDbApiTwo))[0].message,
            /runs 2 replicas but StatefulSet postgres\/postgres, .* runs 1 replica \(spec.replicas unset; Kubernetes defaults it to 1\)\./,
        );

        const unsetApiDbTwo = unsetApi.map((r) =>
            r.name === "postgres-statefulset"
                ? mutated(r, (p) => {
                      p.spec.replicas = 2;
                  })
                : r,
        );
        assert.deepStrictEqual(
            (await runStackPolicy(replicaCountsMatch, unsetApiDbTwo)).map((v) => v.message),
            [
                `${API} runs 1 replica (spec.replicas unset; Kubernetes defaults it to 1) but ${DB}, the database it is paired ` +
                    "with by app.kubernetes.io/part-of=stateful-flask, runs 2 replicas. Give both the same spec.replicas: " +
                    "`pulumi config set apiReplicas 2` to follow the database, or `pulumi config set postgresReplicas 1` to follow the API.",
            ],
        );
    });

    it("treats 0 as 0, not as unset", async () => {
        const violations = await runStackPolicy(
            replicaCountsMatch,
            stackWith("api-deployment", (p) => {
                p.spec.replicas = 0;
            }),
        );
        assert.strictEqual(violations.length, 1);
        assert.match(violations[0].message, /^Deployment stateful-namespace\/stateful-flask runs 0 replicas but/);
    });

    it("reports a HorizontalPodAutoscaler that scales the paired Deployment", async () => {
        const autoscaler = hpa(
            "stateful-flask",
            "stateful-namespace",
            { kind: "Deployment", name: "stateful-flask" },
            2,
            5,
        );
        const violations = await runStackPolicy(replicaCountsMatch, [...stack(), autoscaler]);
        assert.deepStrictEqual(violations, [
            {
                policy: NAME,
                urn: urnOf(autoscaler),
                message:
                    "HorizontalPodAutoscaler stateful-namespace/stateful-flask scales Deployment stateful-namespace/stateful-flask " +
                    `between 2 and 5 replicas at runtime, so its count drifts away from the 1 replica of ${DB} whatever ` +
                    "spec.replicas says. Remove the autoscaler, or pin it with minReplicas = maxReplicas = 1.",
            },
        ]);
    });

    it("reports an autoscaler of any autoscaling API version, and one on the StatefulSet", async () => {
        const v1 = hpa(
            "api-v1",
            "stateful-namespace",
            { kind: "Deployment", name: "stateful-flask" },
            undefined,
            3,
            "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
        );
        const onDb = hpa("db", "postgres", { kind: "StatefulSet", name: "postgres" }, 1, 3);
        const violations = await runStackPolicy(replicaCountsMatch, [...stack(), v1, onDb]);
        assert.deepStrictEqual(
            violations.map((v) => v.urn),
            [urnOf(v1), urnOf(onDb)],
        );
        assert.match(
            violations[0].message,
            /scales Deployment stateful-namespace\/stateful-flask between 1 and 3 replicas/,
        );
        assert.match(
            violations[1].message,
            new RegExp(
                `scales ${DB} between 1 and 3 replicas at runtime, so its count drifts away from the 1 replica of ${API}`,
            ),
        );
    });

    it("accepts an autoscaler pinned to the database's count, and ignores one on another workload", async () => {
        const pinned = hpa("pinned", "stateful-namespace", { kind: "Deployment", name: "stateful-flask" }, 1, 1);
        const otherNamespace = hpa("elsewhere", "other", { kind: "Deployment", name: "stateful-flask" }, 1, 5);
        const otherTarget = hpa("worker", "stateful-namespace", { kind: "Deployment", name: "worker" }, 1, 5);
        assert.deepStrictEqual(
            await runStackPolicy(replicaCountsMatch, [...stack(), pinned, otherNamespace, otherTarget]),
            [],
        );
    });

    it("does not flag autoscalers when flagAutoscalers is false", async () => {
        const autoscaler = hpa(
            "stateful-flask",
            "stateful-namespace",
            { kind: "Deployment", name: "stateful-flask" },
            2,
            5,
        );
        assert.deepStrictEqual(
            await runStackPolicy(replicaCountsMatch, [...stack(), autoscaler], { flagAutoscalers: false }),
            [],
        );
    });

    describe("a replica count unknown during preview", () => {
        const unknownApi = () =>
            stackWith("api-deployment", (p) => {
                p.spec.replicas = UNKNOWN;
            });

        it("checks every known pair, then hands @pulumi/policy its unknown-value error naming the pair (advisory)", async () => {
            const violations: Violation[] = [];
            const resources = [...unknownApi(), ...secondApp(2, 1)];
            await assert.rejects(runStackPolicy(replicaCountsMatch, resources, {}, violations), (err: Error) => {
                assert.ok(err instanceof UnknownValueError, `expected UnknownValueError, got ${err}`);
                assert.strictEqual(
                    err.message,
                    `${API} vs ${DB}: spec.replicas of ${API} is unknown. Checked again when the values are known (pulumi up).`,
                );
                return true;
            });
            // The known, mismatched pair of the second app was still reported: no silent pass.
            assert.deepStrictEqual(
                violations.map((v) => v.message.split(" but ")[0]),
                ["Deployment billing/billing-api runs 2 replicas"],
            );
        });

        it("names an unknown database count too", async () => {
            const resources = stackWith("postgres-statefulset", (p) => {
                p.spec.replicas = UNKNOWN;
            });
            await assert.rejects(runStackPolicy(replicaCountsMatch, resources), (err: Error) => {
                assert.ok(err instanceof UnknownValueError);
                assert.strictEqual(
                    err.message,
                    `${API} vs ${DB}: spec.replicas of ${DB} is unknown. Checked again when the values are known (pulumi up).`,
                );
                return true;
            });
        });

        it("reports a violation instead when unknownReplicas is 'violation'", async () => {
            const violations = await runStackPolicy(replicaCountsMatch, unknownApi(), { unknownReplicas: "violation" });
            assert.deepStrictEqual(violations, [
                {
                    policy: NAME,
                    urn: API_URN,
                    message:
                        `The replica count of ${API} is unknown during preview, so ${API} cannot be compared with ${DB} ` +
                        "(app.kubernetes.io/part-of=stateful-flask). Set spec.replicas from a value known at preview time (stack config), " +
                        "or set unknownReplicas: advisory to check it on update instead.",
                },
            ]);
        });
    });

    describe("pairing", () => {
        it("pairs by part-of group, so a second app in the stack is checked on its own", async () => {
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...stack(), ...secondApp(2, 2)]), []);
            const violations = await runStackPolicy(replicaCountsMatch, [...stack(), ...secondApp(3, 2)]);
            assert.deepStrictEqual(
                violations.map((v) => v.message.split(". ")[0]),
                [
                    "Deployment billing/billing-api runs 3 replicas but StatefulSet billing/billing-db, the database it is paired " +
                        "with by app.kubernetes.io/part-of=billing, runs 2 replicas",
                ],
            );
        });

        it("reports an API and a database that have no partner, so a label typo cannot disable the check", async () => {
            const resources = stackWith("postgres-statefulset", (p) => {
                p.metadata.labels["app.kubernetes.io/part-of"] = "stateful-flsk";
            });
            const violations = await runStackPolicy(replicaCountsMatch, resources);
            assert.deepStrictEqual(
                violations.map((v) => v.message),
                [
                    `${API} is labelled app.kubernetes.io/component=api and app.kubernetes.io/part-of=stateful-flask, but no ` +
                        "StatefulSet in the stack carries app.kubernetes.io/component=database with app.kubernetes.io/part-of=stateful-flask, " +
                        "so its replica count cannot be compared. Label the database StatefulSet, fix the labels, or set requirePair: false.",
                    `${DB} is labelled app.kubernetes.io/component=database and app.kubernetes.io/part-of=stateful-flsk, but no ` +
                        "Deployment in the stack carries app.kubernetes.io/component=api with app.kubernetes.io/part-of=stateful-flsk, " +
                        "so its replica count cannot be compared. Label the API Deployment, fix the labels, or set requirePair: false.",
                ],
            );
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, resources, { requirePair: false }), []);
        });

        it("uses the label keys and values from the policy config", async () => {
            const relabelled = stack().map((r) =>
                r.type === T.deployment || r.type === T.statefulSet
                    ? mutated(r, (p) => {
                          p.metadata.labels.team = "tasks";
                          p.metadata.labels.role = r.type === T.deployment ? "web" : "db";
                          p.spec.replicas = r.type === T.deployment ? 2 : 1;
                      })
                    : r,
            );
            const config = {
                groupLabel: "team",
                componentLabel: "role",
                apiComponent: "web",
                databaseComponent: "db",
                apiReplicasConfigKey: "",
                databaseReplicasConfigKey: "",
            };
            assert.deepStrictEqual(
                (await runStackPolicy(replicaCountsMatch, relabelled, config)).map((v) => v.message),
                [
                    `${API} runs 2 replicas but ${DB}, the database it is paired with by team=tasks, runs 1 replica. Give both the same spec.replicas.`,
                ],
            );
        });

        it("ignores workloads of other components (the migration Job, a worker Deployment)", async () => {
            const worker = mutated(deployment(), (p) => {
                p.metadata.name = "worker";
                p.metadata.labels["app.kubernetes.io/component"] = "worker";
                p.spec.replicas = 7;
            });
            assert.deepStrictEqual(
                await runStackPolicy(replicaCountsMatch, [...stack(), { ...worker, name: "worker" }]),
                [],
            );
        });
    });

    describe("patches (server-side apply) of the paired workloads and of their autoscalers", () => {
        it("passes a DeploymentPatch and a StatefulSetPatch that keep the counts equal, or leave them as they are", async () => {
            const resources = [
                ...stack(),
                deploymentPatch({ replicas: 1 }),
                statefulSetPatch({ template: { metadata: { annotations: { a: "b" } } } }),
            ];
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, resources), []);
        });

        it("reports a DeploymentPatch that sets the API's replicas away from the database's, naming the patch", async () => {
            const patch = deploymentPatch({ replicas: 3 });
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...stack(), patch]), [
                {
                    policy: NAME,
                    urn: API_URN,
                    message:
                        `${API} runs 3 replicas (spec.replicas set by DeploymentPatch stateful-namespace/stateful-flask) but ${DB}, ` +
                        "the database it is paired with by app.kubernetes.io/part-of=stateful-flask, runs 1 replica. Give both the same " +
                        "spec.replicas: `pulumi config set apiReplicas 1` to follow the database, or `pulumi config set postgresReplicas 3` to follow the API.",
                },
            ]);
        });

        it("reports a StatefulSetPatch that sets the database's replicas away from the API's", async () => {
            const violations = await runStackPolicy(replicaCountsMatch, [
                ...stack(),
                statefulSetPatch({ replicas: 2 }),
            ]);
            assert.deepStrictEqual(
                violations.map((v) => v.message.split(". ")[0]),
                [
                    `${API} runs 1 replica but ${DB}, the database it is paired with by app.kubernetes.io/part-of=stateful-flask, ` +
                        "runs 2 replicas (spec.replicas set by StatefulSetPatch postgres/postgres)",
                ],
            );
        });

        it("reports a HorizontalPodAutoscalerPatch that scales the paired Deployment", async () => {
            const patch = hpa(
                "api-hpa",
                "stateful-namespace",
                { kind: "Deployment", name: "stateful-flask" },
                2,
                5,
                T.hpaPatch,
            );
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...stack(), patch]), [
                {
                    policy: NAME,
                    urn: urnOf(patch),
                    message:
                        "HorizontalPodAutoscalerPatch stateful-namespace/api-hpa scales Deployment stateful-namespace/stateful-flask " +
                        `between 2 and 5 replicas at runtime, so its count drifts away from the 1 replica of ${DB} whatever ` +
                        "spec.replicas says. Remove the autoscaler, or pin it with minReplicas = maxReplicas = 1.",
                },
            ]);
        });

        it("reports a patch that unpins an autoscaler pinned to the partner's count", async () => {
            const pinned = hpa("pinned", "stateful-namespace", { kind: "Deployment", name: "stateful-flask" }, 1, 1);
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...stack(), pinned]), []);
            const unpin: FakeResource = {
                type: T.hpaPatch,
                name: "unpin",
                props: { metadata: { name: "pinned", namespace: "stateful-namespace" }, spec: { maxReplicas: 4 } },
            };
            const violations = await runStackPolicy(replicaCountsMatch, [...stack(), pinned, unpin]);
            assert.deepStrictEqual(
                violations.map((v) => [v.urn, v.message.split(", so ")[0]]),
                [
                    [
                        urnOf(pinned),
                        "HorizontalPodAutoscaler stateful-namespace/pinned scales Deployment stateful-namespace/stateful-flask between 1 and 4 replicas at runtime",
                    ],
                ],
            );
        });

        it("pairs a patch of a Deployment the stack does not declare by its own labels, and needs its count", async () => {
            const labels = { "app.kubernetes.io/component": "api", "app.kubernetes.io/part-of": "stateful-flask" };
            const other = { name: "tasks-worker-api", namespace: "elsewhere", labels };
            const noCount = deploymentPatch(
                { template: { spec: { containers: [{ name: "api", image: "app:v2" }] } } },
                other,
            );
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...stack(), noCount]), [
                {
                    policy: NAME,
                    urn: urnOf(noCount),
                    message:
                        "DeploymentPatch elsewhere/tasks-worker-api pairs an object this stack does not declare " +
                        "(app.kubernetes.io/part-of=stateful-flask) but sets no spec.replicas, so its count is whatever the live " +
                        "object has and cannot be compared. Set spec.replicas in the patch.",
                },
            ]);
            const two = deploymentPatch({ replicas: 2 }, other);
            assert.deepStrictEqual(
                (await runStackPolicy(replicaCountsMatch, [...stack(), two])).map((v) => v.message.split(" but ")[0]),
                [
                    "DeploymentPatch elsewhere/tasks-worker-api runs 2 replicas (spec.replicas set by DeploymentPatch elsewhere/tasks-worker-api)",
                ],
            );
        });
    });

    describe("a workload of a group without a component label", () => {
        it("reports a Deployment labelled part-of but not component, which would drop out of the check", async () => {
            const resources = stackWith("api-deployment", (p) => {
                delete p.metadata.labels["app.kubernetes.io/component"];
            });
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, resources), [
                {
                    policy: NAME,
                    urn: API_URN,
                    message:
                        `${API} is labelled app.kubernetes.io/part-of=stateful-flask but has no app.kubernetes.io/component label, ` +
                        "so it is neither an API nor a database of that group and its replica count is not compared. Label it " +
                        "app.kubernetes.io/component=api (or another component, such as worker), or set requirePair: false.",
                },
                {
                    policy: NAME,
                    urn: urnOf(statefulSet()),
                    message:
                        `${DB} is labelled app.kubernetes.io/component=database and app.kubernetes.io/part-of=stateful-flask, but no ` +
                        "Deployment in the stack carries app.kubernetes.io/component=api with app.kubernetes.io/part-of=stateful-flask, " +
                        "so its replica count cannot be compared. Label the API Deployment, fix the labels, or set requirePair: false.",
                },
            ]);
        });

        it("reports a StatefulSet of the group without one, and takes a component label a patch adds", async () => {
            const unlabelled = stackWith("postgres-statefulset", (p) => {
                delete p.metadata.labels["app.kubernetes.io/component"];
            });
            assert.deepStrictEqual(
                (await runStackPolicy(replicaCountsMatch, unlabelled)).map((v) => v.message.split(", so ")[0]),
                [
                    `${DB} is labelled app.kubernetes.io/part-of=stateful-flask but has no app.kubernetes.io/component label`,
                    `${API} is labelled app.kubernetes.io/component=api and app.kubernetes.io/part-of=stateful-flask, but no StatefulSet in the stack carries app.kubernetes.io/component=database with app.kubernetes.io/part-of=stateful-flask`,
                ],
            );
            const relabel: FakeResource = {
                ...statefulSetPatch({}),
                props: {
                    ...statefulSetPatch({}).props,
                    metadata: {
                        name: "postgres",
                        namespace: "postgres",
                        labels: { "app.kubernetes.io/component": "database" },
                    },
                },
            };
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, [...unlabelled, relabel]), []);
        });

        it("leaves such a workload alone with requirePair false, and ignores workloads outside every group", async () => {
            const resources = stackWith("api-deployment", (p) => {
                delete p.metadata.labels["app.kubernetes.io/component"];
            });
            assert.deepStrictEqual(await runStackPolicy(replicaCountsMatch, resources, { requirePair: false }), []);
            const outside = mutated(deployment(), (p) => {
                p.metadata.name = "tools";
                delete p.metadata.labels["app.kubernetes.io/component"];
                delete p.metadata.labels["app.kubernetes.io/part-of"];
            });
            assert.deepStrictEqual(
                await runStackPolicy(replicaCountsMatch, [...stack(), { ...outside, name: "tools" }]),
                [],
            );
        });
    });

    describe("on the program's own registrations (under mocks), at the ends of the range the program accepts", () => {
        /** The program's Deployment and StatefulSet as the policy receives them. */
        async function programWorkloads(api: number, db: number): Promise<FakeResource[]> {
            // A node per member, so the members' spread is required and nothing is logged.
            const { resources } = await evaluate("dev", {
                "stateful-flask:apiReplicas": String(api),
                "stateful-flask:postgresReplicas": String(db),
                "stateful-flask:nodeCount": String(REPLICA_LIMITS.max),
            });
            return resources
                .filter((r) => r.type === T.deployment || r.type === T.statefulSet)
                .map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
        }

        it(`passes apiReplicas = postgresReplicas = ${REPLICA_LIMITS.min} and = ${REPLICA_LIMITS.max}`, async () => {
            for (const n of [REPLICA_LIMITS.min, REPLICA_LIMITS.max]) {
                assert.deepStrictEqual(
                    await runStackPolicy(replicaCountsMatch, await programWorkloads(n, n)),
                    [],
                    `${n}`,
                );
            }
        });

        it("reports the program's API one replica ahead of the largest database", async () => {
            const violations = await runStackPolicy(
                replicaCountsMatch,
                await programWorkloads(REPLICA_LIMITS.max, REPLICA_LIMITS.max - 1),
            );
            assert.deepStrictEqual(
                violations.map((v) => v.message.split(". ")[0]),
                [
                    `${API} runs 9 replicas but ${DB}, the database it is paired with by app.kubernetes.io/part-of=stateful-flask, runs 8 replicas`,
                ],
            );
        });

        it("is never handed an API count without a database count to match: the program refuses one above the range", async () => {
            await assert.rejects(
                evaluate("dev", { "stateful-flask:apiReplicas": String(REPLICA_LIMITS.max + 1) }),
                (err: Error) => err.message === "apiReplicas: 10 is not valid; expected an integer from 1 to 9",
            );
        });
    });

    it("declares every default in its configSchema", () => {
        const properties = replicaCountsMatch.configSchema!.properties;
        assert.deepStrictEqual(Object.keys(properties).sort(), Object.keys(defaults).sort());
        for (const [key, value] of Object.entries(defaults)) {
            assert.deepStrictEqual((properties[key] as { default?: unknown }).default, value, key);
        }
    });
});
