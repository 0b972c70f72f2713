/**
 * The pack as the Pulumi CLI runs it: `node <pack>/node_modules/@pulumi/pulumi/cmd/run-policy-pack <engine> .`
 * with the pack directory as working directory (what the Node.js language host does for an analyzer plugin;
 * the runner registers ts-node itself and type-checks the pack). The pack prints the port of its Analyzer gRPC
 * server; the tests call it with the generated client @pulumi/pulumi ships, feeding it the resources the real
 * program registers under mocks (tests/helpers/program.ts).
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { type ProgramResource, runProgram } from "../helpers/program";
import { policies } from "../../policy/policies";
import { POLICY_DIR, UNKNOWN, requireFromPack } from "./harness";

// The generated client and the protobuf runtime it was generated against, from the pack's own node_modules.
const analyzerGrpcPath = requireFromPack.resolve("@pulumi/pulumi/proto/analyzer_grpc_pb");
const fromPulumi = createRequire(analyzerGrpcPath);
const grpc = fromPulumi("@grpc/grpc-js");
const analyzerGrpc = fromPulumi(analyzerGrpcPath);
const pb = fromPulumi("./analyzer_pb");
const { Empty } = fromPulumi("google-protobuf/google/protobuf/empty_pb");
const { Struct } = fromPulumi("google-protobuf/google/protobuf/struct_pb");

const PACK = "stateful-flask-policies";
const PACK_VERSION = JSON.parse(fs.readFileSync(path.join(POLICY_DIR, "package.json"), "utf8")).version as string;
const LEVEL: Record<number, string> = {
    [pb.EnforcementLevel.ADVISORY]: "advisory",
    [pb.EnforcementLevel.MANDATORY]: "mandatory",
    [pb.EnforcementLevel.DISABLED]: "disabled",
    [pb.EnforcementLevel.REMEDIATE]: "remediate",
};
const API_DEPLOYMENT = "kubernetes:apps/v1:Deployment";

interface Diagnostic {
    policy: string;
    level: string;
    message: string;
    urn: string;
}

/** Starts the pack; resolves with the child process and the port it printed. */
function startPack(): Promise<{ child: ChildProcess; port: number }> {
    const env = { ...process.env };
    for (const key of Object.keys(env).filter((k) => k.startsWith("TS_NODE_"))) {
        delete env[key]; // the root test run's ts-node settings are not the CLI's
    }
    const runner = path.join(POLICY_DIR, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
    // The first argument is the engine's address; the runner drops it before loading the pack.
    const child = spawn(process.execPath, [runner, "127.0.0.1:0", "."], {
        cwd: POLICY_DIR,
        env,
        stdio: ["ignore", "pipe", "pipe"],
    });
    return new Promise((resolve, reject) => {
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => {
            child.kill();
            reject(new Error(`pack printed no port within 90 s; stderr:\n${stderr}`));
        }, 90_000);
        child.on("exit", () => clearTimeout(timer));
        child.stderr!.on("data", (d) => {
            stderr += d;
        });
        child.stdout!.on("data", (d) => {
            stdout += d;
            const line = stdout.split("\n")[0];
            if (stdout.includes("\n") && /^\d+$/.test(line.trim())) {
                clearTimeout(timer);
                resolve({ child, port: Number(line.trim()) });
            } else if (stdout.includes("\n")) {
                child.kill();
                reject(new Error(`pack printed ${JSON.stringify(line)} instead of a port; stderr:\n${stderr}`));
            }
        });
        child.on("exit", (code) =>
            reject(new Error(`pack exited with ${code} before printing its port; stderr:\n${stderr}`)),
        );
    });
}

function call<T>(client: any, method: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) =>
        client[method](request, (err: Error | null, response: T) => (err ? reject(err) : resolve(response))),
    );
}

/** JSON round trip: drops `undefined`, which protobuf Structs cannot hold. */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value ?? {}));

function options(r: ProgramResource) {
    const o = new pb.AnalyzerResourceOptions();
    o.setProtect(r.protect);
    o.setIgnorechangesList(r.ignoreChanges);
    o.setDeletebeforereplace(r.deleteBeforeReplace);
    o.setDeletebeforereplacedefined(true);
    o.setAliasesList([]);
    o.setAdditionalsecretoutputsList([]);
    if (r.parent) {
        o.setParent(r.parent);
    }
    return o;
}

/** The provider a resource was registered with (`<urn>::<id>` references the provider resource). */
function providerOf(r: ProgramResource, all: ProgramResource[]) {
    if (!r.provider) {
        return undefined;
    }
    const urn = r.provider.slice(0, r.provider.lastIndexOf("::"));
    const provider = all.find((p) => p.urn === urn);
    if (!provider) {
        return undefined;
    }
    const p = new pb.AnalyzerProviderResource();
    p.setType(provider.type);
    p.setName(provider.name);
    p.setUrn(provider.urn);
    p.setProperties(Struct.fromJavaScript(plain(provider.inputs)));
    return p;
}

function toDiagnostics(response: any): Diagnostic[] {
    return response.getDiagnosticsList().map((d: any) => ({
        policy: d.getPolicyname(),
        level: LEVEL[d.getEnforcementlevel()],
        message: d.getMessage(),
        urn: d.getUrn(),
    }));
}

const mandatory = (ds: Diagnostic[]) => ds.filter((d) => d.level === "mandatory");

// Evaluating the program takes seconds; each (stack, overrides) is evaluated once. Evaluations share the
// SDK's global mock state, so they run one after another, never concurrently.
const evaluations = new Map<string, Promise<ProgramResource[]>>();
let queue: Promise<unknown> = Promise.resolve();
function program(stack: "dev" | "local", overrides: Record<string, string> = {}): Promise<ProgramResource[]> {
    const key = JSON.stringify([stack, overrides]);
    if (!evaluations.has(key)) {
        const run = queue.then(() => runProgram(stack, overrides));
        queue = run.catch(() => undefined);
        evaluations.set(key, run);
    }
    return evaluations.get(key)!;
}

describe("policy pack over the Analyzer gRPC protocol", function () {
    this.timeout(180_000);
    let child: ChildProcess;
    let client: any;

    before(async () => {
        // The pack (a separate process) starts while the program is evaluated here.
        const starting = startPack();
        starting.then(
            (s) => {
                child = s.child;
            },
            () => undefined,
        ); // so after() stops it even if evaluation fails
        const [started] = await Promise.all([starting, program("dev"), program("local")]);
        client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${started.port}`, grpc.credentials.createInsecure());
    });

    after(() => {
        client?.close();
        child?.kill();
    });

    /** Sends the policy config the CLI would send for `--policy-pack-config <file>` (none: the defaults). */
    async function configure(file?: string): Promise<void> {
        const config: Record<string, any> = file
            ? JSON.parse(fs.readFileSync(path.join(POLICY_DIR, file), "utf8"))
            : {};
        const request = new pb.ConfigureAnalyzerRequest();
        for (const [name, entry] of Object.entries(config)) {
            const { enforcementLevel, ...properties } = entry;
            const policyConfig = new pb.PolicyConfig();
            policyConfig.setEnforcementlevel(
                Number(Object.keys(LEVEL).find((k) => LEVEL[Number(k)] === enforcementLevel)),
            );
            policyConfig.setProperties(Struct.fromJavaScript(properties));
            request.getPolicyconfigMap().set(name, policyConfig);
        }
        await call(client, "configure", request);
    }

    async function analyzeStack(resources: ProgramResource[]): Promise<Diagnostic[]> {
        const request = new pb.AnalyzeStackRequest();
        request.setResourcesList(
            resources.map((r) => {
                const resource = new pb.AnalyzerResource();
                resource.setType(r.type);
                resource.setName(r.name);
                resource.setUrn(r.urn);
                resource.setProperties(Struct.fromJavaScript(plain(r.inputs)));
                resource.setOptions(options(r));
                resource.setDependenciesList(r.dependencies);
                const provider = providerOf(r, resources);
                if (provider) {
                    resource.setProvider(provider);
                }
                if (r.parent) {
                    resource.setParent(r.parent);
                }
                return resource;
            }),
        );
        return toDiagnostics(await call(client, "analyzeStack", request));
    }

    /** `Analyze`, once per resource, as the engine calls it before each step. */
    async function analyzeEach(resources: ProgramResource[]): Promise<Diagnostic[]> {
        const all: Diagnostic[] = [];
        for (const r of resources) {
            const request = new pb.AnalyzeRequest();
            request.setType(r.type);
            request.setName(r.name);
            request.setUrn(r.urn);
            request.setProperties(Struct.fromJavaScript(plain(r.inputs)));
            request.setOptions(options(r));
            const provider = providerOf(r, resources);
            if (provider) {
                request.setProvider(provider);
            }
            all.push(...toDiagnostics(await call(client, "analyze", request)));
        }
        return all;
    }

    const show = (ds: Diagnostic[]) => JSON.stringify(ds, null, 2);

    it("GetAnalyzerInfo reports the pack and every policy, with its level and config schema", async () => {
        const info = await call<any>(client, "getAnalyzerInfo", new Empty());
        assert.strictEqual(info.getName(), PACK);
        assert.strictEqual(info.getVersion(), PACK_VERSION);
        assert.strictEqual(info.getSupportsconfig(), true);
        const served = info.getPoliciesList().map((p: any) => ({
            name: p.getName(),
            level: LEVEL[p.getEnforcementlevel()],
            type: p.getPolicyType() === pb.PolicyType.POLICY_TYPE_STACK ? "stack" : "resource",
            schema: p.getConfigschema()?.getProperties()?.toJavaScript(),
        }));
        const expected = policies.map((p) => ({
            name: p.name,
            level: p.enforcementLevel,
            type: "validateStack" in p ? "stack" : "resource",
            schema: plain(p.configSchema!.properties),
        }));
        assert.deepStrictEqual(served, expected);
        const files = fs
            .readdirSync(path.join(POLICY_DIR, "policies"))
            .filter((f) => f.endsWith(".ts"))
            .map((f) => f.replace(/\.ts$/, ""));
        assert.deepStrictEqual(served.map((p: { name: string }) => p.name).sort(), files.sort());
    });

    for (const [stack, configFile] of [
        ["dev", "policy-config.json"],
        ["local", "policy-config.local.json"],
    ] as const) {
        describe(`the committed ${stack} stack (config ${configFile})`, () => {
            let resources: ProgramResource[];

            before(async () => {
                resources = await program(stack);
                // The program under test really is the one the contract describes.
                assert.strictEqual(resources.filter((r) => r.type === API_DEPLOYMENT).length, 1);
            });

            it("gives no mandatory violation from AnalyzeStack or Analyze", async () => {
                await configure(configFile);
                const diagnostics = [...(await analyzeStack(resources)), ...(await analyzeEach(resources))];
                assert.deepStrictEqual(mandatory(diagnostics), [], show(diagnostics));
            });

            it("gives the mandatory replica-counts-match violation once stateful-flask:apiReplicas differs", async () => {
                const changed = await program(stack, { "stateful-flask:apiReplicas": "3" });
                const deployment = changed.find((r) => r.type === API_DEPLOYMENT)!;
                assert.strictEqual(deployment.inputs.spec.replicas, 3);
                await configure(configFile);
                const diagnostics = await analyzeStack(changed);
                const description = policies.find((p) => p.name === "replica-counts-match")!.description;
                assert.deepStrictEqual(
                    mandatory(diagnostics),
                    [
                        {
                            policy: "replica-counts-match",
                            level: "mandatory",
                            urn: deployment.urn,
                            message:
                                `${description}\nDeployment stateful-namespace/stateful-flask runs 3 replicas but StatefulSet ` +
                                "postgres/postgres, the database it is paired with by app.kubernetes.io/part-of=stateful-flask, runs " +
                                "1 replica. Give both the same spec.replicas: `pulumi config set apiReplicas 1` to follow the database, " +
                                "or `pulumi config set postgresReplicas 3` to follow the API.",
                        },
                    ],
                    show(diagnostics),
                );
                // Per-resource analysis has nothing to say about a stack-level rule.
                assert.deepStrictEqual(mandatory(await analyzeEach(changed)), []);
            });
        });
    }

    it("turns a replica count unknown during preview into an advisory note, not a failure", async () => {
        const resources = (await program("dev")).map((r) =>
            r.type === API_DEPLOYMENT
                ? { ...r, inputs: { ...r.inputs, spec: { ...r.inputs.spec, replicas: UNKNOWN } } }
                : r,
        );
        await configure("policy-config.json");
        const diagnostics = await analyzeStack(resources);
        assert.deepStrictEqual(
            diagnostics.map((d) => ({ ...d, urn: undefined })),
            [
                {
                    policy: "replica-counts-match",
                    level: "advisory",
                    urn: undefined,
                    message:
                        `can't run policy 'replica-counts-match' from policy pack '${PACK}@v${PACK_VERSION}' during preview: ` +
                        "Deployment stateful-namespace/stateful-flask vs StatefulSet postgres/postgres: spec.replicas of Deployment " +
                        "stateful-namespace/stateful-flask is unknown. Checked again when the values are known (pulumi up).",
                },
            ],
            show(diagnostics),
        );
    });

    it("applies the policy config it is sent: the local storage class fails with the default allow-list", async () => {
        const resources = await program("local");
        await configure();
        const diagnostics = mandatory(await analyzeEach(resources));
        assert.deepStrictEqual(
            diagnostics.map((d) => [d.policy, d.message.split("\n")[1]]),
            [
                [
                    "statefulset-volume-claims",
                    'StatefulSet postgres/postgres volumeClaimTemplate "postgredb-volume" uses storageClassName "standard", which ' +
                        'is not in the allowed list ("do-block-storage", "do-block-storage-retain", "do-block-storage-xfs", ' +
                        '"do-block-storage-xfs-retain"). Use one of those, or add the class to allowedStorageClasses in the policy config.',
                ],
            ],
        );
    });
});
