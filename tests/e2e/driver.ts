/**
 * Drives the real program (index.ts) with the real Pulumi engine against a live Kubernetes API server, for
 * `npm run local:up` (tests/e2e/local-up.ts) and the e2e suite (tests/e2e/lifecycle.spec.ts).
 *
 * - The toolchain (Pulumi CLI, pulumi-resource-kubernetes, control plane, kwok) comes from scripts/toolchain.sh.
 * - The control plane is scripts/kwok-cluster.sh with its own state dir and the StorageClass `standard`
 *   (the one Pulumi.local.yaml names).
 * - There is no Node.js language host (docs/e2e.md): the program runs inline through the Automation API, and
 *   index.ts (an async function) is required afresh for every operation.
 * - There is no random provider: the stack's passwords are generated here once and kept as secret config
 *   (`stateful-flask:postgresPassword`, `stateful-flask:replicationPassword`), so no RandomPassword is registered.
 * - Everything Pulumi writes (file backend, PULUMI_HOME, the workspace with the stack's config file, the
 *   passphrase) lives in one state dir.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import * as pulumi from "@pulumi/pulumi";
import { ConfigMap, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";

export const ROOT = path.resolve(__dirname, "..", "..");
export const PROJECT = "stateful-flask";
export const STACK = "local";
/** The StorageClass the local control plane creates; the one Pulumi.local.yaml asks for. */
export const STORAGE_CLASS = "standard";

/** The toolchain's bin dir; throws (with the command to run) when a required part is missing. */
export function toolchainBin(): string {
    try {
        return execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    } catch (err: any) {
        throw new Error(`toolchain incomplete: ${String(err.stderr ?? err.message).trim()} (build it with scripts/toolchain.sh)`);
    }
}

// ------------------------------------------------------------------------------------------- the cluster

/** A control plane started by scripts/kwok-cluster.sh. */
export interface Cluster {
    /** LOCAL_CLUSTER_STATE. */
    readonly stateDir: string;
    readonly kubeconfig: string;
    readonly bin: string;
}

/** Ports of a second control plane (the suite's), so that it can run while `local:up`'s is up. */
export const SUITE_PORTS: Record<string, string> = {
    LOCAL_CLUSTER_ETCD_PORT: "42379",
    LOCAL_CLUSTER_ETCD_PEER_PORT: "42380",
    LOCAL_CLUSTER_APISERVER_PORT: "46443",
    LOCAL_CLUSTER_CONTROLLER_MANAGER_PORT: "50257",
    LOCAL_CLUSTER_SCHEDULER_PORT: "50259",
    LOCAL_CLUSTER_KWOK_PORT: "50247",
};

function clusterEnv(stateDir: string, bin: string, ports: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
        ...process.env,
        ...ports,
        LOCAL_CLUSTER_STATE: stateDir,
        LOCAL_CLUSTER_STORAGE_CLASS: STORAGE_CLASS,
        LOCAL_CLUSTER_BIN: bin,
    };
}

/** Starts (idempotently) a control plane whose state is in `stateDir`. */
export function startCluster(stateDir: string, bin = toolchainBin(), ports: Record<string, string> = {}): Cluster {
    execFileSync(path.join(ROOT, "scripts", "kwok-cluster.sh"), ["start"], { env: clusterEnv(stateDir, bin, ports), stdio: ["ignore", "ignore", "inherit"] });
    return { stateDir, kubeconfig: path.join(stateDir, "kubeconfig"), bin };
}

/** Stops the control plane of `stateDir` and removes that dir. Never throws. */
export function stopCluster(stateDir: string, bin = toolchainBin()): void {
    try {
        execFileSync(path.join(ROOT, "scripts", "kwok-cluster.sh"), ["stop"], { env: clusterEnv(stateDir, bin), stdio: ["ignore", "ignore", "inherit"] });
    } catch (err) {
        process.stderr.write(`kwok-cluster.sh stop failed: ${err}\n`);
    }
}

/** Runs the built kubectl against the cluster; returns stdout. */
export function kubectl(cluster: Cluster, args: string[]): string {
    return execFileSync(path.join(cluster.bin, "kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args], {
        encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024,
    });
}

/** `kubectl get ... -o json`, parsed; undefined when the object does not exist. */
export function getJson(cluster: Cluster, args: string[]): any | undefined {
    try {
        return JSON.parse(kubectl(cluster, ["get", ...args, "-o", "json"]));
    } catch (err: any) {
        if (/NotFound/.test(String(err.stderr ?? ""))) {
            return undefined;
        }
        throw new Error(`kubectl get ${args.join(" ")}: ${err.stderr ?? err.message}`);
    }
}

/** Polls `check` once a second until it returns a value that is not undefined/false, or fails after `seconds`. */
export async function waitFor<T>(what: string, seconds: number, check: () => T | undefined | false): Promise<T> {
    const deadline = Date.now() + seconds * 1000;
    let last: unknown;
    for (;;) {
        try {
            const v = check();
            if (v !== undefined && v !== false) {
                return v;
            }
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${seconds}s waiting for ${what}${last ? `: ${last}` : ""}`);
        }
        await new Promise(r => setTimeout(r, 1000));
    }
}

// ---------------------------------------------------------------------------------------------- the stack

/** The committed Pulumi.local.yaml's config, every value a string, keys namespaced. */
export function committedConfig(stack = STACK): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
    return Object.fromEntries(Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** Drops the repo's own modules (not node_modules, not the tests) from the require cache. */
function clearProgramModules(): void {
    for (const id of Object.keys(require.cache)) {
        if (id.startsWith(ROOT) && !id.includes(`${path.sep}node_modules${path.sep}`) && !id.includes(`${path.sep}tests${path.sep}`)) {
            delete require.cache[id];
        }
    }
}

/** The inline program: index.ts, required afresh so that each operation registers every resource again. */
export async function program(): Promise<Record<string, unknown>> {
    clearProgramModules();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const main = require(path.join(ROOT, "index.ts"));
    return typeof main === "function" ? await main() : main;
}

/** Reads a file in the state dir, or writes `make()` to it (mode 600) and returns that. */
function persisted(file: string, make: () => string): string {
    if (fs.existsSync(file)) {
        return fs.readFileSync(file, "utf8").trim();
    }
    const value = make();
    fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return value;
}

/** 32 alphanumeric characters, like the program's RandomPassword. */
export function generatePassword(): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return Array.from(crypto.randomBytes(32), b => alphabet[b % alphabet.length]).join("");
}

export interface OpenStackArgs {
    /** Holds the backend, PULUMI_HOME, the workspace and the passphrase; created when missing. */
    readonly stateDir: string;
    readonly cluster: Cluster;
    /** Extra config on top of Pulumi.local.yaml (namespaced keys). */
    readonly config?: Record<string, string>;
}

/**
 * The `local` stack in `stateDir` (created on first use): Pulumi.local.yaml's config, the passwords as secret
 * config (generated once), KUBECONFIG pointing at `cluster`.
 */
export async function openStack(args: OpenStackArgs): Promise<Stack> {
    const state = path.resolve(args.stateDir);
    for (const dir of ["backend", "home", "workspace"]) {
        fs.mkdirSync(path.join(state, dir), { recursive: true, mode: 0o700 });
    }
    const passphrase = persisted(path.join(state, "passphrase"), () => crypto.randomBytes(24).toString("hex"));
    const bin = args.cluster.bin;
    const envVars: Record<string, string> = {
        PATH: `${bin}:${process.env.PATH ?? ""}`,
        KUBECONFIG: args.cluster.kubeconfig,
        PULUMI_HOME: path.join(state, "home"),
        PULUMI_BACKEND_URL: `file://${path.join(state, "backend")}`,
        PULUMI_CONFIG_PASSPHRASE: passphrase,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
    // The inline program runs in this process and its provider reads KUBECONFIG from the CLI's environment;
    // set it here too so that nothing in-process falls back to ~/.kube/config.
    process.env.KUBECONFIG = args.cluster.kubeconfig;

    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bin) });
    const stack = await LocalWorkspace.createOrSelectStack({ stackName: STACK, projectName: PROJECT, program }, {
        workDir: path.join(state, "workspace"),
        pulumiHome: path.join(state, "home"),
        pulumiCommand,
        envVars,
        projectSettings: { name: PROJECT, runtime: "nodejs", backend: { url: `file://${path.join(state, "backend")}` } },
    });

    const config: ConfigMap = {};
    for (const [k, v] of Object.entries({ ...committedConfig(), ...(args.config ?? {}) })) {
        config[k] = { value: v };
    }
    const existing = await stack.getAllConfig();
    for (const key of [`${PROJECT}:postgresPassword`, `${PROJECT}:replicationPassword`]) {
        if (!existing[key]) {
            config[key] = { value: generatePassword(), secret: true };
        }
    }
    await stack.setAllConfig(config);
    return stack;
}

/** Sets (or, with undefined, removes) config keys of the stack. */
export async function setConfig(stack: Stack, values: Record<string, string | undefined>): Promise<void> {
    const set: ConfigMap = {};
    for (const [k, v] of Object.entries(values)) {
        if (v === undefined) {
            await stack.removeConfig(k);
        } else {
            set[k] = { value: v };
        }
    }
    if (Object.keys(set).length) {
        await stack.setAllConfig(set);
    }
}

/** The operations' output goes to stderr when E2E_VERBOSE is set. */
export function onOutput(): ((out: string) => void) | undefined {
    return process.env.E2E_VERBOSE ? (out: string) => process.stderr.write(out) : undefined;
}
