/**
 * Wiring: every policy file is registered in the pack, names match files, every parameter is declared in
 * configSchema with the default the code uses, and the committed policy-config files fit those schemas.
 * (protocol.spec.ts checks the same list as the running pack reports it over gRPC.)
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Policy } from "../../policy/types";
import { policies } from "../../policy/policies";
import { POLICY_DIR, runResourcePolicy, runStackPolicy } from "./harness";
import { stack } from "./fixtures";

const POLICY_FILES = fs
    .readdirSync(path.join(POLICY_DIR, "policies"))
    .filter((f) => f.endsWith(".ts"))
    .sort();
const ENFORCEMENT_LEVELS = ["advisory", "mandatory", "remediate", "disabled"];

/** The JSON-schema type of a config value, as the CLI validates it. */
function jsonType(value: unknown): string {
    if (Array.isArray(value)) {
        return "array";
    }
    if (value === null) {
        return "null";
    }
    return Number.isInteger(value) ? "integer" : typeof value;
}

/** Checks a policy-config file against the policies' schemas; returns the problems found. */
function configProblems(config: Record<string, any>): string[] {
    const problems: string[] = [];
    for (const [name, entry] of Object.entries(config)) {
        const policy = policies.find((p) => p.name === name);
        if (name !== "all" && !policy) {
            problems.push(`${name}: no such policy`);
            continue;
        }
        const settings = typeof entry === "string" ? { enforcementLevel: entry } : entry;
        for (const [key, value] of Object.entries(settings as Record<string, unknown>)) {
            if (key === "enforcementLevel") {
                if (!ENFORCEMENT_LEVELS.includes(value as string)) {
                    problems.push(`${name}.enforcementLevel: ${value}`);
                }
                continue;
            }
            const schema = policy?.configSchema?.properties[key] as
                | { type?: string; enum?: unknown[]; items?: { type?: string; enum?: unknown[] } }
                | undefined;
            if (!schema) {
                problems.push(`${name}.${key}: not in configSchema`);
                continue;
            }
            const actual = jsonType(value);
            if (schema.type !== actual && !(schema.type === "number" && actual === "integer")) {
                problems.push(`${name}.${key}: ${actual}, schema says ${schema.type}`);
            }
            if (schema.enum && !schema.enum.includes(value)) {
                problems.push(`${name}.${key}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
            }
            for (const item of Array.isArray(value) ? value : []) {
                if (schema.items?.type && jsonType(item) !== schema.items.type) {
                    problems.push(`${name}.${key}[]: ${jsonType(item)}, schema says ${schema.items.type}`);
                }
                if (schema.items?.enum && !schema.items.enum.includes(item)) {
                    problems.push(
                        `${name}.${key}[]: ${JSON.stringify(item)} not in ${JSON.stringify(schema.items.enum)}`,
                    );
                }
            }
        }
    }
    return problems;
}

describe("policy pack wiring", () => {
    it("registers one policy per file in policy/policies, named after its file", () => {
        assert.deepStrictEqual(policies.map((p) => `${p.name}.ts`).sort(), POLICY_FILES);
        assert.strictEqual(POLICY_FILES.length, 9);
    });

    it("registers, for each file, the very policy object the file exports", () => {
        // Loaded here, together with the files, because other specs clear the module cache between tests.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const registered: unknown[] = require(path.join(POLICY_DIR, "policies.ts")).policies;
        for (const file of POLICY_FILES) {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const exported = Object.values(require(path.join(POLICY_DIR, "policies", file))).filter(
                (v): v is Policy => typeof v === "object" && v !== null && "name" in v && "description" in v,
            );
            assert.strictEqual(exported.length, 1, `${file} exports ${exported.length} policies`);
            assert.ok(registered.includes(exported[0]), `${file}: ${exported[0].name} is not in policies.ts`);
        }
    });

    it("serves that list from index.ts", () => {
        const index = fs.readFileSync(path.join(POLICY_DIR, "index.ts"), "utf8");
        assert.match(index, /new PolicyPack\("stateful-flask-policies", \{[\s\S]*\bpolicies,\n\}\);/);
        assert.match(index, /import \{ policies \} from "\.\/policies";/);
    });

    it("gives every policy a kebab-case name, a full-sentence description, an enforcement level and a configSchema", () => {
        for (const p of policies) {
            assert.match(p.name, /^[a-z]+(-[a-z]+)*$/, p.name);
            assert.match(p.description, /^[A-Z].*\.$/, p.name);
            assert.ok(ENFORCEMENT_LEVELS.includes(p.enforcementLevel as string), p.name);
            assert.ok(
                p.configSchema && Object.keys(p.configSchema.properties).length > 0,
                `${p.name} has no parameters`,
            );
        }
    });

    it("declares, in each configSchema, exactly the defaults the policy runs with", () => {
        for (const file of POLICY_FILES) {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const mod = require(path.join(POLICY_DIR, "policies", file));
            const policy = policies.find((p) => `${p.name}.ts` === file)!;
            const schemaDefaults = Object.fromEntries(
                Object.entries(policy.configSchema!.properties).map(([k, v]) => [
                    k,
                    (v as { default?: unknown }).default,
                ]),
            );
            assert.deepStrictEqual(schemaDefaults, { ...mod.defaults }, file);
        }
    });

    for (const file of ["policy-config.json", "policy-config.local.json"]) {
        it(`${file} names only real policies and parameters, with values their schemas accept`, () => {
            const config = JSON.parse(fs.readFileSync(path.join(POLICY_DIR, file), "utf8"));
            assert.deepStrictEqual(configProblems(config), []);
            assert.deepStrictEqual(Object.keys(config).sort(), policies.map((p) => p.name).sort());
        });
    }

    it("finds problems in a bad config (the checker itself can fail)", () => {
        assert.deepStrictEqual(
            configProblems({
                "replica-count-match": "mandatory",
                "image-tag-pinned": { enforcementLevel: "strict", requireDigest: "yes", kinds: ["Pod"] },
                "replica-counts-match": { unknownReplicas: "ignore", apiComponent: "api", groupLabels: "x" },
            }),
            [
                "replica-count-match: no such policy",
                "image-tag-pinned.enforcementLevel: strict",
                "image-tag-pinned.requireDigest: string, schema says boolean",
                'image-tag-pinned.kinds[]: "Pod" not in ["Deployment","StatefulSet","DaemonSet","Job","CronJob"]',
                'replica-counts-match.unknownReplicas: "ignore" not in ["advisory","violation"]',
                "replica-counts-match.groupLabels: not in configSchema",
            ],
        );
    });

    it("passes the compliant fixture with the committed dev config", async () => {
        const config = JSON.parse(fs.readFileSync(path.join(POLICY_DIR, "policy-config.json"), "utf8"));
        for (const p of policies) {
            const { enforcementLevel: _level, ...params } = config[p.name];
            const violations =
                "validateStack" in p
                    ? await runStackPolicy(p, stack(), params)
                    : await runResourcePolicy(p, stack(), params);
            assert.deepStrictEqual(violations, [], p.name);
        }
    });
});
