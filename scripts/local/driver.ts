/**
 * Drives the real program (index.ts) with the real Pulumi engine on the real single-node cluster
 * (scripts/local-cluster.sh: kubelet, containerd, CNI, kube-proxy, CoreDNS), with the project's images built here
 * (scripts/images.sh) and imported into the node. Used by `npm run local:up` (scripts/local/up.ts) and the e2e
 * suite (tests/e2e/*.spec.ts).
 *
 * - The toolchain (Pulumi CLI, pulumi-resource-kubernetes, control plane, kubelet, ...) comes from
 *   scripts/toolchain.sh.
 * - There is no Node.js language host (docs/e2e.md): the program runs inline through the Automation API, and
 *   index.ts (an async function) is required afresh for every operation.
 * - There is no random provider: the stack's passwords are generated here once and kept as secret config, and
 *   beside the volumes (so a re-created cluster opens the volumes it finds with the passwords they were made with).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { type ConfigMap, LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";

export const ROOT = path.resolve(__dirname, "..", "..");
export const PROJECT = "stateful-flask";
export const STACK = "local";
export const key = (k: string) => `${PROJECT}:${k}`;

const t0 = Date.now();
/** A progress line with the elapsed time, on stderr. */
export function progress(msg: string): void {
    process.stderr.write(`[e2e ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

export function sh(
    cmd: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; quiet?: boolean } = {},
): string {
    const r = spawnSync(cmd, args, {
        encoding: "utf8",
        env: opts.env ?? process.env,
        input: opts.input,
        timeout: opts.timeoutMs ?? 30 * 60 * 1000,
        stdio: ["pipe", "pipe", opts.quiet ? "pipe" : "inherit"],
        maxBuffer: 256 * 1024 * 1024,
    });
    if (r.status !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr ?? ""}${r.error ?? ""}`);
    }
    return r.stdout;
}

/** The toolchain's bin dir; throws (with the command to run) when a required part is missing. */
export function toolchainBin(): string {
    try {
        return execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin"], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
        }).trim();
    } catch (err) {
        const e = err as Error & { stderr?: string };
        throw new Error(
            `toolchain incomplete: ${String(e.stderr ?? e.message).trim()} (build it with scripts/toolchain.sh)`,
        );
    }
}

// ------------------------------------------------------------------------------------------- the cluster

/** The real single-node cluster of scripts/local-cluster.sh. */
export interface Cluster {
    readonly stateDir: string;
    readonly volumesDir: string;
    readonly kubeconfig: string;
    readonly bin: string;
    readonly containerdSocket: string;
}

function clusterEnv(c: { stateDir: string; volumesDir: string; bin: string }): NodeJS.ProcessEnv {
    return {
        ...process.env,
        LOCAL_CLUSTER_STATE: c.stateDir,
        LOCAL_CLUSTER_VOLUMES: c.volumesDir,
        LOCAL_CLUSTER_BIN: c.bin,
    };
}

/**
 * Frees the node for a new cluster: the node address, ports and bridge are the machine's, one cluster at a time.
 * Traces of a cluster whose processes are gone without a stop (a killed run, a restored machine) are cleaned up
 * (`local-cluster.sh reclaim`); returns the state dir of a cluster that still runs, undefined when the node is free.
 */
export function claimNode(bin = toolchainBin()): string | undefined {
    const r = spawnSync(path.join(ROOT, "scripts", "local-cluster.sh"), ["reclaim"], {
        encoding: "utf8",
        env: { ...process.env, LOCAL_CLUSTER_BIN: bin },
        stdio: ["ignore", "pipe", "inherit"],
        timeout: 10 * 60 * 1000,
    });
    if (r.status === 0) return undefined;
    if (r.status === 3) return r.stdout.trim();
    throw new Error(
        `scripts/local-cluster.sh reclaim failed (${r.status ?? r.signal}): the node is still taken by a cluster that is gone; see its output above`,
    );
}

/** Starts (idempotently) the cluster whose state is in `stateDir`. */
export function startCluster(stateDir: string, volumesDir: string, bin = toolchainBin()): Cluster {
    const c = { stateDir, volumesDir, bin };
    sh(path.join(ROOT, "scripts", "local-cluster.sh"), ["start"], { env: clusterEnv(c) });
    return {
        ...c,
        kubeconfig: path.join(stateDir, "kubeconfig"),
        containerdSocket: path.join(stateDir, "containerd", "containerd.sock"),
    };
}

/** Stops the cluster of `stateDir`: drains the node, removes every trace; keeps the volumes. Never throws. */
export function stopCluster(c: { stateDir: string; volumesDir: string; bin: string }): void {
    try {
        sh(path.join(ROOT, "scripts", "local-cluster.sh"), ["stop"], { env: clusterEnv(c) });
    } catch (err) {
        process.stderr.write(`local-cluster.sh stop failed: ${err}\n`);
    }
}

/** Builds (when missing) and imports the named images into the node's containerd. */
export function importImages(cluster: Cluster, names: string[]): void {
    sh(path.join(ROOT, "scripts", "images.sh"), ["import", "--address", cluster.containerdSocket, ...names]);
}

/** Runs the built kubectl against the cluster; returns stdout. */
export function kubectl(cluster: Cluster, args: string[], input?: string): string {
    return execFileSync(path.join(cluster.bin, "kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args], {
        encoding: "utf8",
        input,
        stdio: ["pipe", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
        timeout: 120000,
    });
}

/** `kubectl get ... -o json`, parsed; undefined when the object does not exist. */
// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON, which the callers read field by field
export function getJson(cluster: Cluster, args: string[]): any | undefined {
    try {
        return JSON.parse(kubectl(cluster, ["get", ...args, "-o", "json"]));
    } catch (err) {
        const e = err as Error & { stderr?: string };
        if (/NotFound/.test(String(e.stderr ?? ""))) {
            return undefined;
        }
        throw new Error(`kubectl get ${args.join(" ")}: ${e.stderr ?? e.message}`);
    }
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `seconds`. */
export async function waitFor<T>(
    what: string,
    seconds: number,
    check: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
    const deadline = Date.now() + seconds * 1000;
    let last: unknown;
    for (;;) {
        try {
            const v = await check();
            if (v !== undefined && v !== false) {
                return v;
            }
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${seconds}s waiting for ${what}${last ? `: ${last}` : ""}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
}

// ---------------------------------------------------------------------------------------------- the stack

/** The committed Pulumi.local.yaml's config, every value a string, keys namespaced. */
export function committedConfig(stack = STACK): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
        config?: Record<string, unknown>;
    };
    return Object.fromEntries(
        Object.entries(doc.config ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** Drops the program's modules (not node_modules, not the tests, not this tooling) from the require cache. */
function clearProgramModules(): void {
    const kept = ["node_modules", "tests", "scripts"].map((dir) => `${path.sep}${dir}${path.sep}`);
    for (const id of Object.keys(require.cache)) {
        if (id.startsWith(ROOT) && !kept.some((dir) => id.includes(dir))) {
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

/** 32 alphanumeric characters, like the program's RandomPassword. */
export function generatePassword(): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return Array.from(crypto.randomBytes(32), (b) => alphabet[b % alphabet.length]).join("");
}

/** The stack's secret config that stands in for @pulumi/random (blocked here). */
export const PASSWORD_KEYS = [
    "postgresPassword",
    "replicationPassword",
    "postgresSuperuserPassword",
    "patroniApiPassword",
    "postgresTlsSeed",
    "backupCipherPassphrase",
];

const prefixed = (values: Record<string, string>) =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [key(k), v]));

/**
 * The passwords of the stack, kept next to the volumes they open (mode 600): generated once, reused by a stack
 * that finds the volumes again after the cluster was re-created.
 */
export function stackPasswords(volumesDir: string): Record<string, string> {
    const file = path.join(volumesDir, "local-stack-passwords.json");
    const have: Record<string, string> = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
    let changed = false;
    for (const k of PASSWORD_KEYS) {
        if (!have[k]) {
            have[k] = generatePassword();
            changed = true;
        }
    }
    if (changed) {
        fs.mkdirSync(volumesDir, { recursive: true });
        fs.writeFileSync(file, JSON.stringify(have, null, 1), { mode: 0o600 });
    }
    return have;
}

/** The local cluster's ingress controller (scripts/local-cluster/traefik.yaml): the Service it publishes on Ingress status. */
export const LOCAL_INGRESS_IP = "10.96.0.80";
export const LOCAL_INGRESS_HOST = "drexii.me";
/** The local cluster's S3 store for backups (scripts/local-cluster/backup-store.yaml). */
export const LOCAL_BACKUP_STORE = {
    bucket: "local-backups",
    region: "us-east-1",
    endpoint: "s3.backup-store.svc.cluster.local",
} as const;

/**
 * What the local cluster adds to Pulumi.local.yaml: its Traefik as an existing controller serving the seed's host, and
 * backups to its S3 store (the CA and the key come from the cluster: {@link backupStoreConfig}). The committed stack
 * file keeps `ingressController: none` and no backups for kind and minikube, which have neither.
 */
export const LOCAL_CLUSTER_CONFIG: Record<string, string> = {
    [key("ingressController")]: "existing",
    [key("ingressClassName")]: "traefik",
    [key("ingressHost")]: LOCAL_INGRESS_HOST,
    [key("backupMode")]: "existing",
    [key("backupBucket")]: LOCAL_BACKUP_STORE.bucket,
    [key("backupRegion")]: LOCAL_BACKUP_STORE.region,
    [key("backupEndpoint")]: LOCAL_BACKUP_STORE.endpoint,
    [key("backupUriStyle")]: "path",
};

/** The backup store's CA (config) and root key (secrets), kept by scripts/local-cluster.sh beside the volumes. */
export function backupStoreConfig(volumesDir: string): {
    config: Record<string, string>;
    secrets: Record<string, string>;
} {
    const dir = path.join(volumesDir, ".backup-store");
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
    return {
        config: { [key("backupCaCertificate")]: read("ca.crt") },
        secrets: {
            [key("backupAccessKeyId")]: read("access-key").trim(),
            [key("backupSecretAccessKey")]: read("secret-key").trim(),
        },
    };
}

export interface OpenStackArgs {
    /** Holds the backend, PULUMI_HOME, the workspace and the passphrase; created when missing. */
    readonly stateDir: string;
    readonly cluster: Cluster;
    /** Extra config on top of Pulumi.local.yaml and LOCAL_CLUSTER_CONFIG (namespaced keys). */
    readonly config?: Record<string, string>;
    /** Another stack of the project beside `local` (the soak's restore), with the same passwords. @default "local" */
    readonly stackName?: string;
}

/** The `local` stack (or `stackName`) in `stateDir`, created on first use: Pulumi.local.yaml's config, the passwords as secrets. */
export async function openStack(args: OpenStackArgs): Promise<Stack> {
    const state = path.resolve(args.stateDir);
    for (const dir of ["backend", "home", "workspace"]) {
        fs.mkdirSync(path.join(state, dir), { recursive: true, mode: 0o700 });
    }
    const passphraseFile = path.join(state, "passphrase");
    if (!fs.existsSync(passphraseFile)) {
        fs.writeFileSync(passphraseFile, `${crypto.randomBytes(24).toString("hex")}\n`, { mode: 0o600 });
    }
    const passphrase = fs.readFileSync(passphraseFile, "utf8").trim();
    const bin = args.cluster.bin;
    const envVars: Record<string, string> = {
        PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`,
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

    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bin), skipVersionCheck: true });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: args.stackName ?? STACK, projectName: PROJECT, program },
        {
            workDir: path.join(state, "workspace"),
            pulumiHome: path.join(state, "home"),
            pulumiCommand,
            envVars,
            projectSettings: {
                name: PROJECT,
                runtime: "nodejs",
                backend: { url: `file://${path.join(state, "backend")}` },
            },
        },
    );

    const config: ConfigMap = {};
    const store = backupStoreConfig(args.cluster.volumesDir);
    for (const [k, v] of Object.entries({
        ...committedConfig(),
        ...LOCAL_CLUSTER_CONFIG,
        ...store.config,
        ...(args.config ?? {}),
    })) {
        config[k] = { value: v };
    }
    for (const [k, v] of Object.entries({ ...prefixed(stackPasswords(args.cluster.volumesDir)), ...store.secrets })) {
        config[k] = { value: v, secret: true };
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

/** Default state dirs of `npm run local:up`. */
export function localUpDirs(): { state: string; cluster: string; volumes: string; pulumi: string } {
    const state = process.env.LOCAL_UP_STATE ?? path.join(os.homedir(), ".cache", "stateful-flask-local-up");
    return {
        state,
        cluster: path.join(state, "cluster"),
        volumes: process.env.LOCAL_CLUSTER_VOLUMES ?? path.join(os.homedir(), ".cache", "stateful-flask-volumes"),
        pulumi: path.join(state, "pulumi"),
    };
}

/** Runs scripts/local-cluster.sh with this cluster's state (e.g. restart-node, status). */
export function localClusterScript(c: { stateDir: string; volumesDir: string; bin: string }, args: string[]): string {
    return sh(path.join(ROOT, "scripts", "local-cluster.sh"), args, { env: clusterEnv(c) });
}
