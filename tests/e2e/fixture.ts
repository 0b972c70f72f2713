/**
 * The e2e suite's shared world: one real single-node cluster (its own state and volume dirs), the project's
 * images imported into it, the `local` stack deployed with the real engine, and the clients that prove each
 * lifecycle step on the rows: the API (through its Service's ClusterIP, as the forwarder of local:up does) and
 * psql on every Postgres pod. Started by the first spec that asks for it, stopped by the root hook (hooks.ts).
 */
import * as assert from "node:assert";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { Stack, UpResult } from "@pulumi/pulumi/automation";
import { type BuiltImage, buildImage, debianMirrors, imageSpecs, importImage } from "../../scripts/images/build";
import {
    type Cluster,
    LOCAL_CLUSTER_CONFIG,
    LOCAL_INGRESS_IP,
    ROOT,
    committedConfig,
    getJson,
    importImages,
    key,
    kubectl,
    onOutput,
    openStack,
    progress,
    setConfig,
    sh,
    claimNode,
    startCluster,
    stopCluster,
    toolchainBin,
    waitFor,
} from "../../scripts/local/driver";

export const NS = "postgres";
export const API_NS = "stateful-namespace";
export const API = "stateful-flask";
/** The stack's config as deployed here: Pulumi.local.yaml plus the local cluster's ingress (scripts/local/driver.ts). */
export const BASE = { ...committedConfig(), ...LOCAL_CLUSTER_CONFIG };
export const IMAGE_V1 = BASE[key("apiImage")];
export const IMAGE_V2 = IMAGE_V1.replace(/:[^:/]+$/, ":v1.1.0");
export const POSTGRES_IMAGE = BASE[key("postgresImage")];
/** The same Postgres image under a new tag, as a rebuild of the same packages would be published. */
export const POSTGRES_IMAGE_REBUILT = POSTGRES_IMAGE.replace(/:[^:/]+$/, ":15.20-2");
/** The migration release v2 adds (a nullable `priority` column), from the API image's tests. */
const V2_MIGRATION = path.join(ROOT, "images", "api", "tests", "fixtures", "c4d1e2f3a4b5_add_task_priority.py");

export interface World {
    readonly tmp: string;
    readonly cluster: Cluster;
    readonly stack: Stack;
}

let world: World | undefined;
let starting: Promise<World> | undefined;
/** Config keys a spec changed; converge() puts them back. */
const changed = new Set<string>();

/** The API image of release v2: images/api plus one migration, built like any image (the step cache makes it quick). */
function buildApiV2(): BuiltImage {
    const context = fs.mkdtempSync(path.join(os.tmpdir(), "api-v2-"));
    const api = path.join(ROOT, "images", "api");
    for (const f of ["Dockerfile", "packages.txt", "gunicorn.conf.py", "tasks_api", "migrations"]) {
        fs.cpSync(path.join(api, f), path.join(context, f), {
            recursive: true,
            filter: (src) => !src.includes("__pycache__"),
        });
    }
    fs.copyFileSync(V2_MIGRATION, path.join(context, "migrations", "versions", path.basename(V2_MIGRATION)));
    try {
        return buildImage({
            name: "api-v2",
            dockerfile: path.join(context, "Dockerfile"),
            context: () => context,
            refs: [IMAGE_V2],
            buildArgs: debianMirrors(),
        });
    } finally {
        fs.rmSync(context, { recursive: true, force: true });
    }
}

function importSuiteImages(cluster: Cluster): void {
    progress("images: api, postgres (and api v1.1.0 for the upgrade)");
    importImages(cluster, ["api", "postgres"]);
    importImage(cluster.containerdSocket, buildApiV2());
    const postgres = buildImage(imageSpecs().find((s) => s.name === "postgres")!);
    importImage(cluster.containerdSocket, postgres, [POSTGRES_IMAGE_REBUILT]);
}

/** A new cluster in the suite's state dir, on the suite's volumes (after the old one is gone), with the images. */
export async function startAgain(): Promise<void> {
    const { cluster } = await e2e();
    startCluster(cluster.stateDir, cluster.volumesDir, cluster.bin);
    importSuiteImages(cluster);
}

async function start(): Promise<World> {
    const bin = toolchainBin();
    const other = claimNode(bin);
    if (other !== undefined) {
        throw new Error(
            `a local cluster already runs on this machine (state ${other}; npm run local:up?): the e2e suite needs the node to itself; stop it with npm run local:down`,
        );
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stateful-flask-e2e-"));
    progress(`cluster: starting a real single-node cluster in ${tmp}`);
    const cluster = startCluster(path.join(tmp, "cluster"), path.join(tmp, "volumes"), bin);
    importSuiteImages(cluster);
    const stack = await openStack({ stateDir: path.join(tmp, "pulumi"), cluster });
    world = { tmp, cluster, stack };
    return world;
}

/** The shared world, started on first use. */
export function e2e(): Promise<World> {
    starting ??= start();
    return starting;
}

/** Where a failed case leaves what the cluster looked like (E2E_ARTIFACTS, or a dir under the system's tmp). */
const ARTIFACTS =
    process.env.E2E_ARTIFACTS ??
    path.join(os.tmpdir(), `stateful-flask-e2e-artifacts-${new Date().toISOString().replace(/[:.]/g, "-")}`);

/**
 * Keeps, at the moment a case failed (before the next one converges the cluster), the objects, the events and
 * every container's log, so that a failure in CI can be read after the cluster is gone. Never throws.
 */
export function recordFailure(title: string): void {
    if (!world) return;
    const dir = path.join(ARTIFACTS, title.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120));
    try {
        fs.mkdirSync(dir, { recursive: true });
        const dump = (file: string, args: string[]) => {
            try {
                fs.writeFileSync(path.join(dir, file), kubectl(world!.cluster, args));
            } catch (err: any) {
                fs.writeFileSync(
                    path.join(dir, file),
                    `kubectl ${args.join(" ")} failed: ${err.stderr ?? err.message}`,
                );
            }
        };
        dump("pods.txt", [
            "get",
            "pods,pvc,svc,endpointslices,statefulsets,deployments,jobs",
            "-A",
            "-o",
            "wide",
            "--show-labels",
        ]);
        dump("events.txt", ["get", "events", "-A", "--sort-by=.lastTimestamp"]);
        dump("postgres-pods.yaml", ["get", "pods", "-n", NS, "-o", "yaml"]);
        // Each member as it saw itself: Patroni's view of the cluster, the sync standby setting, what every backend waits on.
        const pods = (
            JSON.parse(kubectl(world.cluster, ["get", "pods", "-n", NS, "-l", "app=postgres", "-o", "json"]))
                .items as any[]
        ).map((p) => p.metadata.name);
        for (const pod of pods) {
            const exec = ["exec", "-n", NS, pod, "-c", "postgres", "--"];
            dump(`${pod}-patroni.json`, [
                ...exec,
                "python3",
                "-c",
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8008/cluster', timeout=5).read().decode())",
            ]);
            dump(`${pod}-activity.txt`, [
                ...exec,
                "psql",
                "-X",
                "-d",
                "stateful-flask-db",
                "-c",
                "SHOW synchronous_standby_names",
                "-c",
                "SELECT pg_is_in_recovery()",
                "-c",
                "SELECT application_name, state, sync_state, replay_lsn FROM pg_stat_replication",
                "-c",
                "SELECT pid, usename, client_addr, state, wait_event_type, wait_event, now() - xact_start AS xact_age, left(query, 60) AS query FROM pg_stat_activity WHERE backend_type = 'client backend'",
            ]);
        }
        fs.cpSync(path.join(world.cluster.stateDir, "pod-logs"), path.join(dir, "pod-logs"), {
            recursive: true,
            dereference: true,
        });
        fs.cpSync(path.join(world.cluster.stateDir, "logs"), path.join(dir, "cluster-logs"), { recursive: true });
        progress(`failed: the cluster's state and logs are kept in ${dir}`);
    } catch (err) {
        progress(`failed: could not keep the cluster's state in ${dir}: ${err}`);
    }
}

/** Stops the cluster and removes the suite's dirs (E2E_KEEP=1 keeps them). */
export function teardown(): void {
    if (!world) return;
    stopCluster({ stateDir: world.cluster.stateDir, volumesDir: world.cluster.volumesDir, bin: world.cluster.bin });
    if (!process.env.E2E_KEEP) fs.rmSync(world.tmp, { recursive: true, force: true });
    world = undefined;
}

export async function up(opts: { refresh?: boolean } = {}): Promise<UpResult> {
    const { stack } = await e2e();
    const started = Date.now();
    const result = await stack.up({ onOutput: onOutput(), refresh: opts.refresh });
    assert.strictEqual(result.summary.result, "succeeded", `up: ${result.summary.result}\n${result.stderr}`);
    progress(
        `up: ${JSON.stringify(result.summary.resourceChanges ?? {})} in ${((Date.now() - started) / 1000).toFixed(0)}s`,
    );
    return result;
}

export async function configure(values: Record<string, string>): Promise<void> {
    const { stack } = await e2e();
    for (const k of Object.keys(values)) changed.add(k);
    await setConfig(stack, values);
}

/** Back to Pulumi.local.yaml's config, deployed, with the cluster healthy. */
export async function converge(): Promise<UpResult> {
    const { stack } = await e2e();
    if (changed.size) {
        await setConfig(stack, Object.fromEntries([...changed].map((k) => [k, BASE[k]])));
        changed.clear();
    }
    const result = await up();
    await healthy();
    return result;
}

// -------------------------------------------------------------------------------------------- the cluster

export async function k(args: string[], input?: string): Promise<string> {
    return kubectl((await e2e()).cluster, args, input);
}

export async function get(args: string[]): Promise<any | undefined> {
    return getJson((await e2e()).cluster, args);
}

/** Runs `command` in a Postgres pod's postgres container; its output. */
export async function inPostgres(pod: string, command: string[]): Promise<string> {
    return k(["exec", "-n", NS, pod, "-c", "postgres", "--", ...command]);
}

/** SIGKILL to the pod's container (PID 1, Patroni, and with it the postmaster) through containerd: what an OOM
 * kill or a runtime crash does. */
export async function killContainer(pod: string, opts: { quiet?: boolean } = {}): Promise<void> {
    const id = (await get(["pod", pod, "-n", NS])).status.containerStatuses[0].containerID.replace("containerd://", "");
    const socket = (await e2e()).cluster.containerdSocket;
    sh("ctr", ["--address", socket, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id], opts);
}

export async function postgresPods(): Promise<any[]> {
    return (await get(["pods", "-n", NS, "-l", "app=postgres"])).items.sort((a: any, b: any) =>
        a.metadata.name.localeCompare(b.metadata.name),
    );
}

/** Every desired Postgres pod Ready with a role label and streaming, and the API Deployment rolled out. */
export async function healthy(seconds = 300): Promise<{ leader: string; replicas: string[] }> {
    const replicasWanted = Number((await get(["statefulset", "postgres", "-n", NS])).spec.replicas);
    return waitFor(
        `${replicasWanted} Postgres members (one leader, streaming replicas) and the API Ready`,
        seconds,
        async () => {
            // The rollout is over: every pod runs the current template (minReadySeconds leaves moments when every pod
            // is Ready in the middle of a rolling update).
            const sts = (await get(["statefulset", "postgres", "-n", NS])).status;
            if (sts.updateRevision !== sts.currentRevision || sts.updatedReplicas !== replicasWanted) return undefined;
            const pods = await postgresPods();
            const ready = pods.filter((p) =>
                (p.status.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True"),
            );
            if (ready.length !== replicasWanted) return undefined;
            const leaders = ready.filter((p) => p.metadata.labels.role === "master").map((p) => p.metadata.name);
            const replicas = ready.filter((p) => p.metadata.labels.role === "replica").map((p) => p.metadata.name);
            if (leaders.length !== 1 || replicas.length !== replicasWanted - 1) return undefined;
            if (
                replicasWanted > 1 &&
                Number(await psql(leaders[0], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) !==
                    replicasWanted - 1
            )
                return undefined;
            // Commits do not wait for a standby that is gone (Patroni 3.0.2 can leave one named; the pod's sync guard
            // takes it out: docs/decisions.md): every standby the leader's setting names streams.
            const [setting, streaming] = (
                await psql(
                    leaders[0],
                    "SELECT current_setting('synchronous_standby_names') || '|' || " +
                        "coalesce((SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE state = 'streaming'), '')",
                )
            ).split("|");
            const named = setting
                .replace(/^\s*(?:(?:FIRST|ANY)\s+)?\d+\s*\((.*)\)\s*$/i, "$1")
                .split(",")
                .map((n) => n.trim().replace(/^"(.*)"$/, "$1"))
                .filter((n) => n && n !== "*");
            if (named.some((n) => !streaming.split(",").includes(n))) return undefined;
            const dep = await get(["deployment", API, "-n", API_NS]);
            if (
                !dep ||
                dep.status.readyReplicas !== dep.spec.replicas ||
                dep.status.updatedReplicas !== dep.spec.replicas
            )
                return undefined;
            // The API's pods are Ready on /healthz, which does not touch the database (a restart must not kill them);
            // the Service path to the leader is what a client sees.
            const r = await fetch(`${await apiBase()}/tasks`, { signal: AbortSignal.timeout(5000) });
            if (r.status !== 200) return undefined;
            return { leader: leaders[0], replicas };
        },
    );
}

/** psql on a Postgres pod as the postgres user over its socket (peer authentication), in the app database. */
export async function psql(pod: string, sql: string): Promise<string> {
    return (
        await inPostgres(pod, [
            "psql",
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "stateful-flask-db",
            "-c",
            sql,
        ])
    ).trim();
}

// ------------------------------------------------------------------------------------------------ the API

export interface Task {
    id: number;
    title: string;
    description: string | null;
    [more: string]: unknown;
}

/** The rows' identity: how many, and an md5 over id|title|description of each, by id (the same on both sides). */
export interface Rows {
    count: number;
    md5: string;
    ids: number[];
}

export function digest(tasks: Array<{ id: number; title: string; description: string | null }>): Rows {
    const sorted = [...tasks].sort((a, b) => a.id - b.id);
    const text = sorted.map((t) => `${t.id}|${t.title}|${t.description ?? ""}`).join(",");
    return {
        count: sorted.length,
        md5: crypto.createHash("md5").update(text).digest("hex"),
        ids: sorted.map((t) => t.id),
    };
}

export async function apiBase(): Promise<string> {
    const svc = await get(["service", API, "-n", API_NS]);
    return `http://${svc.spec.clusterIP}:80`;
}

export async function postTask(
    title: string,
    description: string | null = null,
): Promise<{ status: number; task?: Task }> {
    const r = await fetch(`${await apiBase()}/tasks`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ title, description }),
        signal: AbortSignal.timeout(10000),
    });
    const body = await r.json().catch(() => undefined);
    return { status: r.status, task: r.status === 201 ? (body as Task) : undefined };
}

/** Every task through the API: GET /tasks page by page (the largest page, 1000), following `next` while a page has one. */
export async function listTasks(): Promise<Task[]> {
    const base = await apiBase();
    const tasks: Task[] = [];
    for (let route: string | null = "/tasks?limit=1000"; route !== null; ) {
        const r: Response = await fetch(`${base}${route}`, { signal: AbortSignal.timeout(10000) });
        assert.strictEqual(r.status, 200, `GET ${route} answered ${r.status}`);
        const page = (await r.json()) as { tasks: Task[]; next?: string };
        tasks.push(...page.tasks);
        route = page.next ?? null;
    }
    return tasks;
}

/** A request through the local cluster's ingress controller (its Service), with the given Host header. */
export function viaIngress(
    host: string,
    method: string,
    route: string,
    body?: unknown,
): Promise<{ status: number; body: string }> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: LOCAL_INGRESS_IP,
                port: 80,
                method,
                path: route,
                timeout: 10000,
                headers: {
                    Host: host,
                    ...(data ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } : {}),
                },
            },
            (res) => {
                let text = "";
                res.on("data", (c: Buffer) => (text += c.toString()));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${route} via the ingress timed out`)));
        req.on("error", reject);
        req.end(data);
    });
}

/** The rows through the API, and on every Postgres pod (replicas waited for), all equal. */
export async function rowsEverywhere(): Promise<Rows> {
    const viaApi = digest(await listTasks());
    const sql =
        "SELECT count(*) || ' ' || coalesce(md5(string_agg(id || '|' || title || '|' || coalesce(description, ''), ',' ORDER BY id)), '') FROM task";
    for (const pod of await postgresPods()) {
        const name = pod.metadata.name;
        await waitFor(`${name} to hold the API's ${viaApi.count} rows`, 120, async () => {
            const [count, md5] = (await psql(name, sql)).split(" ");
            return Number(count) === viaApi.count && (viaApi.count === 0 || md5 === viaApi.md5) ? true : undefined;
        });
    }
    return viaApi;
}

/** Writes tasks through the API every `intervalMs`, recording every id that got a 201. */
export class ApiWriter {
    readonly acked: number[] = [];
    readonly failures: Array<{ at: number; status: number | string }> = [];
    private running = true;
    private loop: Promise<void>;

    constructor(
        private readonly label: string,
        intervalMs = 100,
    ) {
        this.loop = (async () => {
            let n = 0;
            while (this.running) {
                const t = Date.now();
                try {
                    const r = await postTask(`${this.label} ${n++}`, `written during ${this.label}`);
                    if (r.status === 201 && r.task) this.acked.push(r.task.id);
                    else this.failures.push({ at: t, status: r.status });
                } catch (err) {
                    this.failures.push({
                        at: t,
                        status: String(err instanceof Error ? err.message : err).slice(0, 80),
                    });
                }
                await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - t))));
            }
        })();
    }

    async waitForAcks(n: number, seconds = 120): Promise<void> {
        const target = this.acked.length + n;
        await waitFor(
            `${n} more writes acknowledged through the API`,
            seconds,
            () => this.acked.length >= target || undefined,
        );
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }

    /** Acknowledged ids that `rows` lacks. */
    missingFrom(rows: Rows): number[] {
        const have = new Set(rows.ids);
        return this.acked.filter((id) => !have.has(id));
    }
}

/** Samples, once a second, which Postgres pods accept writes (not in recovery), until stopped. */
export class WritableSampler {
    readonly samples: Array<{ at: number; writable: string[] }> = [];
    private running = true;
    private loop = (async () => {
        while (this.running) {
            const writable: string[] = [];
            for (const p of await postgresPods().catch(() => [])) {
                if (p.status.phase !== "Running") continue;
                const r = await psql(p.metadata.name, "SELECT NOT pg_is_in_recovery()").catch(() => "");
                if (r === "t") writable.push(p.metadata.name);
            }
            this.samples.push({ at: Date.now(), writable });
            await new Promise((r) => setTimeout(r, 1000));
        }
    })();

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }

    /** Samples in which more than one member accepted writes. */
    splitBrain(): Array<{ at: number; writable: string[] }> {
        return this.samples.filter((s) => s.writable.length > 1);
    }
}

/** The PVCs of the Postgres pods: name -> uid, bound volume. */
export async function claims(): Promise<Record<string, { uid: string; volume: string }>> {
    const items = (await get(["pvc", "-n", NS])).items as any[];
    return Object.fromEntries(items.map((p) => [p.metadata.name, { uid: p.metadata.uid, volume: p.spec.volumeName }]));
}

export { progress };
