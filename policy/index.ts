/**
 * The stateful-flask policy pack. Run it with
 *   pulumi preview --policy-pack policy --policy-pack-config policy/policy-config.json
 * The policies live in ./policies (one per file) and are listed in ./policies.ts; see docs/policy.md.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("stateful-flask-policies", {
    description:
        "Replica parity between the Flask API and its Postgres StatefulSet, StatefulSet data-safety rules, " +
        "synchronous Postgres replication and workload hygiene for the stateful-flask program.",
    provider: "kubernetes",
    tags: ["kubernetes", "statefulset", "postgres", "data-safety"],
    policies,
});
