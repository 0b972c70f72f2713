import * as assert from "node:assert";
import { postgresSynchronousReplication } from "../../policy/policies/postgres-synchronous-replication";
import { UNKNOWN, UnknownValueError, runResourcePolicy } from "./harness";
import { mutated, stack, statefulSet } from "./fixtures";

const NAME = "postgres-synchronous-replication";
const STS = "StatefulSet postgres/postgres";

/** The fixture's StatefulSet with SYNCHRONOUS_MODE and spec.replicas set. */
function database(mode: string, replicas: unknown) {
    return [
        mutated(statefulSet(), (p) => {
            const env = p.spec.template.spec.containers[0].env.find((e: any) => e.name === "SYNCHRONOUS_MODE");
            env.value = mode;
            p.spec.replicas = replicas;
        }),
    ];
}

describe("policy postgres-synchronous-replication", () => {
    it("passes the compliant stack (on, 1 replica)", async () => {
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, stack()), []);
    });

    it("reports off with 3 replicas: a failover may lose acknowledged commits", async () => {
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, database("off", 3)), [
            {
                policy: NAME,
                urn: undefined,
                message:
                    `${STS} runs 3 replicas with SYNCHRONOUS_MODE=off (container "postgres"): replication is ` +
                    "asynchronous, so a failover may promote a replica that has not received the latest commits, and commits " +
                    "the API was told succeeded are lost. Turn synchronous replication on: " +
                    "`pulumi config set postgresSynchronousMode on`.",
            },
        ]);
    });

    it("passes off with 1 replica (nothing to fail over to)", async () => {
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, database("off", 1)), []);
    });

    it("passes on with 3 replicas", async () => {
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, database("on", 3)), []);
    });

    it("reports strict with 1 replica: every write would hang", async () => {
        assert.deepStrictEqual(
            (await runResourcePolicy(postgresSynchronousReplication, database("strict", 1))).map((v) => v.message),
            [
                `${STS} runs 1 replica with SYNCHRONOUS_MODE=strict (container "postgres"): no commit is acknowledged until a ` +
                    "synchronous standby confirms it, and without a second member there is none, so every write would hang. " +
                    "Use `pulumi config set postgresSynchronousMode on`, or run at least 2 replicas " +
                    "(`pulumi config set postgresReplicas 2`).",
            ],
        );
    });

    it("counts unset spec.replicas as 1, as the API server does", async () => {
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, database("off", undefined)), []);
        assert.deepStrictEqual(
            (await runResourcePolicy(postgresSynchronousReplication, database("strict", undefined))).map(
                (v) => v.message.split(":")[0],
            ),
            [`${STS} runs 1 replica (spec.replicas unset) with SYNCHRONOUS_MODE=strict (container "postgres")`],
        );
    });

    it("omits the config hint when the config keys are ''", async () => {
        const violations = await runResourcePolicy(postgresSynchronousReplication, database("off", 2), {
            synchronousModeConfigKey: "",
        });
        assert.deepStrictEqual(
            violations.map((v) => v.message.split("lost. ")[1]),
            ["Set SYNCHRONOUS_MODE to on."],
        );
    });

    it("leaves StatefulSets that are not the database alone", async () => {
        const other = mutated(database("off", 3)[0], (p) => {
            p.metadata.labels["app.kubernetes.io/component"] = "cache";
        });
        assert.deepStrictEqual(await runResourcePolicy(postgresSynchronousReplication, [other]), []);
    });

    describe("a value unknown during preview", () => {
        it("hands @pulumi/policy its unknown-value error (an advisory note) when off meets unknown replicas", async () => {
            await assert.rejects(
                runResourcePolicy(postgresSynchronousReplication, database("off", UNKNOWN)),
                (err: Error) => {
                    assert.ok(err instanceof UnknownValueError, `expected UnknownValueError, got ${err}`);
                    assert.strictEqual(
                        err.message,
                        `${STS}: spec.replicas is unknown, so SYNCHRONOUS_MODE=off cannot be judged. ` +
                            "Checked again when the values are known (pulumi up).",
                    );
                    return true;
                },
            );
        });

        it("passes on with unknown replicas: no count makes it unsafe", async () => {
            assert.deepStrictEqual(
                await runResourcePolicy(postgresSynchronousReplication, database("on", UNKNOWN)),
                [],
            );
        });

        it("hands back the unknown-value error when SYNCHRONOUS_MODE itself is unknown", async () => {
            await assert.rejects(
                runResourcePolicy(postgresSynchronousReplication, database(UNKNOWN, 3)),
                (err: Error) => {
                    assert.ok(err instanceof UnknownValueError, `expected UnknownValueError, got ${err}`);
                    assert.strictEqual(
                        err.message,
                        `${STS}: SYNCHRONOUS_MODE is unknown. Checked again when the values are known (pulumi up).`,
                    );
                    return true;
                },
            );
        });
    });
});
