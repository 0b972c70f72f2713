/**
 * Evaluates the real program (index.ts) under Pulumi mocks with the configuration of a committed stack file,
 * and records every resource registration as the engine would receive it: type, name, inputs, parent,
 * provider and the resource options that matter for data safety (protect, retainOnDelete, ignoreChanges,
 * deleteBeforeReplace, dependencies). No CLI, no cloud.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import * as settings from "@pulumi/pulumi/runtime/settings";

export const ROOT = path.resolve(__dirname, "..", "..");
export const PROJECT = "stateful-flask";
export type StackName = "dev" | "local";

/** One resource registration, as the engine received it. */
export interface ProgramResource {
    type: string;
    name: string;
    urn: string;
    inputs: Record<string, any>;
    custom: boolean;
    parent?: string;
    provider?: string;
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    dependencies: string[];
    /** Dotted paths of the inputs the SDK sent as secrets (a secret nested in an object makes the object secret). */
    secretInputs: string[];
}

/** The result of one evaluation. */
export interface ProgramRun {
    resources: ProgramResource[];
    /** The module's exports (Outputs), to check values and secrecy. */
    exports: Record<string, any>;
}

/** The committed stack file's config, as the CLI hands it to the program: every value a string. */
export function stackConfig(stack: StackName): Record<string, string> {
    const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** The Docker config the mocked DOCR credentials of `registryName` hold (DOCR's format: one auth for its host). */
export function mockDockerCredentials(registryName: string): string {
    const token = `dop_v1_mock_registry_${registryName}`;
    return JSON.stringify({
        auths: { "registry.digitalocean.com": { auth: Buffer.from(`${token}:${token}`).toString("base64") } },
    });
}

/** The credentials of the Spaces key the mocked provider creates. */
export const MOCK_SPACES_KEY = { accessKey: "DO00MOCKBUCKETKEY", secretKey: "mock-bucket-secret-key" } as const;

/** Spaces credentials of the DigitalOcean provider itself (what creates buckets), set in every evaluation unless overridden. */
export const MOCK_PROVIDER_SPACES = {
    "digitalocean:spacesAccessId": "DO00MOCKPROVIDERKEY",
    "digitalocean:spacesSecretKey": "mock-provider-secret",
} as const;

/** The outputs the stack's last update left (what a StackReference to the stack itself reads); none by default. */
let previousOutputs: Record<string, unknown> = {};

// State the mocks hand back for resources whose outputs the program reads.
function mockState(type: string, name: string, inputs: any): Record<string, any> {
    switch (type) {
        case "pulumi:pulumi:StackReference":
            return { ...inputs, outputs: previousOutputs, secretOutputNames: [] };
        case "digitalocean:index/kubernetesCluster:KubernetesCluster":
            return {
                ...inputs,
                name: inputs.name ?? name,
                endpoint: `https://${name}.k8s.ondigitalocean.com`,
                status: "running",
                kubeConfigs: [
                    {
                        clusterCaCertificate: Buffer.from("mock CA certificate").toString("base64"),
                        host: `https://${name}.k8s.ondigitalocean.com`,
                        token: "doks-7-day-token",
                        expiresAt: "2026-12-01T00:00:00Z",
                        rawConfig: "apiVersion: v1",
                    },
                ],
            };
        case "digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials":
            return {
                ...inputs,
                dockerCredentials: mockDockerCredentials(inputs.registryName),
                credentialExpirationTime: "2076-11-24T00:00:00Z",
            };
        case "digitalocean:index/spacesBucket:SpacesBucket":
            return {
                ...inputs,
                bucketDomainName: `${inputs.name}.${inputs.region}.digitaloceanspaces.com`,
                endpoint: `${inputs.region}.digitaloceanspaces.com`,
                bucketUrn: `do:space:${inputs.name}`,
            };
        case "digitalocean:index/spacesKey:SpacesKey":
            return {
                ...inputs,
                accessKey: MOCK_SPACES_KEY.accessKey,
                secretKey: MOCK_SPACES_KEY.secretKey,
                createdAt: "2026-11-24T00:00:00Z",
            };
        case "random:index/randomPassword:RandomPassword":
            return {
                ...inputs,
                result: `mockpassword${name.replace(/[^A-Za-z0-9]/g, "")}`.slice(0, inputs.length ?? 32),
            };
        case "kubernetes:networking.k8s.io/v1:Ingress":
            return { ...inputs, status: { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } } };
        default:
            return inputs;
    }
}

/** A Spaces bucket in the mocked account, as getSpacesBuckets lists it. */
export interface AccountBucket {
    readonly name: string;
    readonly region: string;
}

/** The buckets of the evaluation under way (evaluate's `accountBuckets`). */
let accountBuckets: readonly AccountBucket[] = [];

const mocks: pulumi.runtime.Mocks = {
    newResource: (args) => ({
        id: args.inputs?.metadata?.name ?? `${args.name}-id`,
        state: mockState(args.type, args.name, args.inputs),
    }),
    call: (args) => {
        if (args.token === "digitalocean:index/getKubernetesVersions:getKubernetesVersions") {
            const prefix: string = args.inputs.versionPrefix ?? "";
            const offered = ["1.34.9-do.0", "1.35.4-do.1", "1.36.1-do.0"];
            const valid = offered.filter((v) => v.startsWith(prefix));
            return {
                id: "versions",
                latestVersion: valid[valid.length - 1] ?? "",
                validVersions: valid,
                versionPrefix: prefix,
            };
        }
        if (args.token === "digitalocean:index/getSpacesBuckets:getSpacesBuckets") {
            const filters: Array<{ key: "name" | "region"; values: string[] }> = args.inputs.filters ?? [];
            const buckets = accountBuckets
                .filter((b) => filters.every((f) => f.values.includes(b[f.key])))
                .map((b) => ({
                    ...b,
                    bucketDomainName: `${b.name}.${b.region}.digitaloceanspaces.com`,
                    endpoint: `${b.region}.digitaloceanspaces.com`,
                    urn: `do:space:${b.name}`,
                }));
            return { id: "buckets", buckets };
        }
        throw new Error(`unexpected invoke ${args.token} in tests`);
    },
};

// The wire form of a secret: { [SPECIAL_SIG_KEY]: SECRET_SIG, value }.
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** The inputs as plain values: secrets replaced by their values (secretInputs records which were secret). */
function unwrapSecrets(value: any): any {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value === null || typeof value !== "object") {
        return value;
    }
    if (value[SIG_KEY] === SECRET_SIG) {
        return unwrapSecrets(value.value);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
}

function secretPaths(value: any, prefix = ""): string[] {
    if (value === null || typeof value !== "object") {
        return [];
    }
    if (value[SIG_KEY] === SECRET_SIG) {
        return [prefix];
    }
    return Object.entries(value).flatMap(([k, v]) => secretPaths(v, prefix ? `${prefix}.${k}` : k));
}

/**
 * Evaluates index.ts with the stack file's config plus `overrides` (keys like `stateful-flask:apiReplicas`;
 * `undefined` removes a key), on a stack whose last update exported `previous`, in an account that holds
 * `buckets` (none by default: a new stack's bucket does not exist yet). Rejects with the program's error when the
 * program throws.
 */
export async function evaluate(
    stack: StackName,
    overrides: Record<string, string | undefined> = {},
    preview = false,
    previous: Record<string, unknown> = {},
    buckets: readonly AccountBucket[] = [],
): Promise<ProgramRun> {
    previousOutputs = previous;
    accountBuckets = buckets;
    const config: Record<string, string> = {
        ...stackConfig(stack),
        "digitalocean:token": "dop_v1_mock_token",
        ...MOCK_PROVIDER_SPACES,
    };
    for (const [k, v] of Object.entries(overrides)) {
        if (v === undefined) {
            delete config[k];
        } else {
            config[k] = v;
        }
    }

    // The organization a DIY backend reports ("organization"), which a StackReference's name starts with.
    await pulumi.runtime.setMocks(mocks, PROJECT, stack, preview, "organization");
    pulumi.runtime.setAllConfig(config, [
        "digitalocean:token",
        "digitalocean:spacesSecretKey",
        `${PROJECT}:postgresPassword`,
        `${PROJECT}:replicationPassword`,
        `${PROJECT}:backupAccessKeyId`,
        `${PROJECT}:backupSecretAccessKey`,
        `${PROJECT}:backupCipherPassphrase`,
    ]);

    const resources: ProgramResource[] = [];
    const monitor = settings.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
        register(req, (err: any, resp: any) => {
            if (!err) {
                const raw = req.getObject()?.toJavaScript() ?? {};
                resources.push({
                    type: req.getType(),
                    name: req.getName(),
                    urn: resp.getUrn(),
                    inputs: unwrapSecrets(raw),
                    custom: req.getCustom(),
                    parent: req.getParent() || undefined,
                    provider: req.getProvider() || undefined,
                    protect: req.getProtect() === true,
                    retainOnDelete: req.getRetainondelete() === true,
                    deleteBeforeReplace: req.getDeletebeforereplace() === true,
                    ignoreChanges: req.getIgnorechangesList(),
                    dependencies: req.getDependenciesList(),
                    secretInputs: secretPaths(raw),
                });
            }
            callback(err, resp);
        });
    };

    let moduleExports: Record<string, any> = {};
    try {
        await pulumi.runtime.runInPulumiStack(async () => {
            // As the Node.js language host does: a program exporting a function is called and awaited. The
            // program keeps no module state (config is read inside the function), so modules load once.
            const program = require(path.join(ROOT, "index.ts"));
            moduleExports = typeof program === "function" ? await program() : program;
            return moduleExports;
        });
        await settings.disconnect();
    } catch (err) {
        // Tests check that a bad input fails before anything but the stack itself is registered.
        throw Object.assign(err instanceof Error ? err : new Error(String(err)), { registered: resources });
    }
    return { resources, exports: moduleExports };
}

/** The contract the policy tests use: just the registrations. */
export async function runProgram(
    stack: StackName,
    overrides: Record<string, string | undefined> = {},
): Promise<ProgramResource[]> {
    return (await evaluate(stack, overrides)).resources;
}

/** True when the input at `dotted` path was sent as a secret, itself or as part of a secret object. */
export function isSecretInput(resource: ProgramResource, dotted: string): boolean {
    return resource.secretInputs.some((p) => dotted === p || dotted.startsWith(`${p}.`));
}

/** Resolves an Output (or plain value) to its value and whether it is secret. */
export async function unwrap<T>(
    value: pulumi.Input<T> | undefined,
): Promise<{ value: T | undefined; secret: boolean }> {
    const out = pulumi.output(value);
    const secret = await (out as any).isSecret;
    const resolved = await new Promise<T | undefined>((resolve) =>
        out.apply((v) => {
            resolve(v as T);
            return v;
        }),
    );
    return { value: resolved, secret };
}
