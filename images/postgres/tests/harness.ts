/**
 * Real processes for the Postgres image's tests: Patroni members started through the image's own entrypoint
 * (images/postgres/pod/entrypoint.sh) as the postgres user, each with its volume directory, on loopback ports,
 * with the Kubernetes DCS on a loopback kube-apiserver (scripts/control-plane.sh), a Pod object per
 * member as the StatefulSet would create, and a writer that records every acknowledged insert.
 *
 * What differs from a pod: processes instead of containers (so a "crash" kills Patroni, the postmaster and its
 * backends explicitly, as a container's end would), 127.0.0.1 with distinct ports instead of pod IPs, and the
 * kubeconfig instead of a service-account token (pod.py and Patroni support both).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { tlsMaterial } from "../../../components/postgres-tls";

export const ROOT = path.resolve(__dirname, "..", "..", "..");
export const PG_BIN = "/usr/lib/postgresql/15/bin";
export const PYTHON = "/usr/bin/python3";
/** The pod code the members run: the image's, or POD_SOURCE (another version of it, e.g. to see a test fail without a fix). */
export const POD_SOURCE = process.env.POD_SOURCE ?? path.resolve(__dirname, "..", "pod");
export const WRITER = path.join(__dirname, "writer.py");
export const APP_USER = "stateful-flask-user";
export const APP_DB = "stateful-flask-db";
export const PASSWORDS = {
    superuser: "su:per'pass",
    replication: "repl:pass\\word'",
    app: "app-password",
    api: "api-password",
} as const;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The postgres user's ids; the tests run as root (as CI does) and start every server as that user. */
export function postgresIdentity(): { uid: number; gid: number } {
    if (process.getuid?.() !== 0)
        throw new Error("these tests start PostgreSQL as the postgres user: run them as root");
    const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"], { encoding: "utf8" }).stdout.trim());
    const uid = id("-u");
    if (!Number.isInteger(uid) || uid <= 0)
        throw new Error("no postgres user: run npm run setup (installs postgresql-15)");
    return { uid, gid: id("-g") };
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port;
            server.close(() => resolve(port));
        });
    });
}

/** A 0755 temp directory owned by `owner` (default root). */
export function tempDir(prefix: string, owner?: { uid: number; gid: number }): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(dir, 0o755);
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    return dir;
}

export function ownedDir(dir: string, owner: { uid: number; gid: number }, mode = 0o700): string {
    fs.mkdirSync(dir, { recursive: true });
    fs.chownSync(dir, owner.uid, owner.gid);
    fs.chmodSync(dir, mode);
    return dir;
}

/**
 * Copies the pod's files (or another directory's) into `dest`, root-owned and world-readable as in the image.
 * The servers run as the postgres user, which cannot read a checkout in a 0700 home directory: the copy is what
 * they run, wherever the checkout is.
 */
export function installPodFiles(dest: string, source = POD_SOURCE): string {
    fs.cpSync(source, dest, { recursive: true });
    execFileSync("chmod", ["-R", "a+rX", dest]);
    for (let d = dest; d !== path.dirname(d); d = path.dirname(d)) {
        if (d === os.tmpdir()) break;
        fs.chmodSync(d, fs.statSync(d).mode | 0o055);
    }
    return dest;
}

export async function waitFor<T>(
    what: string,
    timeoutMs: number,
    probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
        try {
            const v = await probe();
            if (v !== undefined && v !== (false as unknown)) return v as T;
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline)
            throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${last}` : ""}`);
        await sleep(250);
    }
}

// --------------------------------------------------------------------------------------- control plane

/** etcd + kube-apiserver on loopback, started by scripts/control-plane.sh. */
export class ControlPlane {
    private constructor(
        readonly state: string,
        readonly bin: string,
        readonly kubeconfig: string,
        readonly env: NodeJS.ProcessEnv,
    ) {}

    static async start(): Promise<ControlPlane> {
        const bin = execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin", "etcd", "kube"], {
            encoding: "utf8",
        }).trim();
        const state = tempDir("patroni-dcs-");
        const env = {
            ...process.env,
            CONTROL_PLANE_STATE: path.join(state, "cluster"),
            CONTROL_PLANE_BIN: bin,
            CONTROL_PLANE_ETCD_PORT: String(await freePort()),
            CONTROL_PLANE_ETCD_PEER_PORT: String(await freePort()),
            CONTROL_PLANE_APISERVER_PORT: String(await freePort()),
        };
        execFileSync(path.join(ROOT, "scripts", "control-plane.sh"), ["start"], {
            env,
            stdio: ["ignore", "ignore", "pipe"],
        });
        // Patroni runs as postgres: it gets its own readable copy of the admin kubeconfig.
        const kubeconfig = path.join(state, "kubeconfig");
        fs.copyFileSync(path.join(state, "cluster", "kubeconfig"), kubeconfig);
        const pg = postgresIdentity();
        fs.chownSync(kubeconfig, pg.uid, pg.gid);
        return new ControlPlane(state, bin, kubeconfig, env);
    }

    kubectl(args: string[], input?: string): string {
        return execFileSync(path.join(this.bin, "kubectl"), ["--kubeconfig", this.kubeconfig, ...args], {
            encoding: "utf8",
            input,
            stdio: ["pipe", "pipe", "pipe"],
        });
    }

    /** A namespace with one Pod object per member, labelled as the StatefulSet labels them. */
    createNamespace(ns: string, members: string[]): void {
        const pods = members
            .map(
                (name) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: postgres, app.kubernetes.io/instance: postgres}}
spec: {automountServiceAccountToken: false, containers: [{name: postgres, image: none}]}
`,
            )
            .join("");
        this.kubectl(
            ["apply", "-f", "-"],
            `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: ${ns}}\n`,
        );
        this.kubectl(["apply", "-f", "-"], pods);
    }

    /**
     * A StatefulSet object `postgres` with `replicas` in `ns`, as the pods' preStop reads it (no controller runs here:
     * it creates no pods); `undefined` deletes it.
     */
    statefulSet(ns: string, replicas: number | undefined): void {
        if (replicas === undefined) {
            this.kubectl(["-n", ns, "delete", "statefulset", "postgres", "--ignore-not-found"]);
            return;
        }
        this.kubectl(
            ["apply", "-f", "-"],
            `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: ${ns}}
spec:
  replicas: ${replicas}
  serviceName: postgres-headless
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec: {containers: [{name: postgres, image: none}]}
`,
        );
    }

    /** Patroni's ConfigMaps in `ns` (the leader lock and the cluster state). */
    configMaps(ns: string): string[] {
        return this.kubectl(["-n", ns, "get", "configmaps", "-o", "name"])
            .split("\n")
            .filter((l) => l.startsWith("configmap/postgres-"))
            .sort();
    }

    podLabels(ns: string): Record<string, string> {
        const out = this.kubectl([
            "-n",
            ns,
            "get",
            "pods",
            "-o",
            'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.role}{"\\n"}{end}',
        ]);
        return Object.fromEntries(
            out
                .trim()
                .split("\n")
                .filter(Boolean)
                .map((l) => l.split("=") as [string, string]),
        );
    }

    stop(): void {
        try {
            execFileSync(path.join(ROOT, "scripts", "control-plane.sh"), ["stop"], { env: this.env, stdio: "ignore" });
        } finally {
            fs.rmSync(this.state, { recursive: true, force: true });
        }
    }
}

// ------------------------------------------------------------------------------------------------ members

/** Runs psql over TCP (as a client of the Service would) and returns trimmed stdout; throws on failure. */
export function psql(
    port: number,
    sql: string,
    opts: { user?: string; db?: string; password?: string; timeout?: number; ca?: string; sslmode?: string } = {},
): string {
    const user = opts.user ?? "postgres";
    const password =
        opts.password ?? (user === "postgres" ? PASSWORDS.superuser : user === APP_USER ? PASSWORDS.app : "");
    // With the cluster's CA: TLS, and the server's certificate checked for 127.0.0.1 (verify-full).
    const tls = opts.ca
        ? { PGSSLMODE: opts.sslmode ?? "verify-full", PGSSLROOTCERT: opts.ca }
        : opts.sslmode
          ? { PGSSLMODE: opts.sslmode }
          : {};
    const r = spawnSync(
        path.join(PG_BIN, "psql"),
        [
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            String(port),
            "-U",
            user,
            "-d",
            opts.db ?? APP_DB,
            "-c",
            sql,
        ],
        {
            encoding: "utf8",
            env: { PATH: "/usr/bin:/bin", PGPASSWORD: password, PGCONNECT_TIMEOUT: "3", ...tls },
            timeout: opts.timeout ?? 15000,
        },
    );
    if (r.status !== 0) throw new Error(`psql :${port} ${sql}: ${r.stderr || r.error}`);
    return r.stdout.trim();
}

export interface MemberOptions {
    /** Extra or overriding environment of the entrypoint. */
    readonly env?: Record<string, string | undefined>;
}

/** One Patroni member: its volume, its ports, and its entrypoint process while it runs. */
export class Member {
    readonly name: string;
    readonly volume: string;
    readonly pgdata: string;
    readonly runDir: string;
    readonly logFile: string;
    private child?: ChildProcess;
    private exit?: Promise<number | null>;

    constructor(
        readonly cluster: PatroniCluster,
        readonly ordinal: number,
        readonly pgPort: number,
        readonly apiPort: number,
    ) {
        this.name = `postgres-${ordinal}`;
        const pg = postgresIdentity();
        this.volume = ownedDir(path.join(cluster.root, `volume-${ordinal}`), pg);
        this.pgdata = path.join(this.volume, "pgdata");
        this.runDir = ownedDir(path.join(cluster.root, `run-${ordinal}`), pg, 0o2775);
        this.logFile = path.join(cluster.root, `${this.name}.log`);
    }

    env(extra: Record<string, string | undefined> = {}): Record<string, string> {
        const env: Record<string, string | undefined> = {
            PATH: `${PG_BIN}:/usr/bin:/bin`,
            LANG: "C.UTF-8",
            HOME: this.runDir,
            POD_NAME: this.name,
            POD_NAMESPACE: this.cluster.namespace,
            POD_IP: "127.0.0.1",
            LISTEN_ADDRESS: "127.0.0.1",
            PGPORT: String(this.pgPort),
            API_PORT: String(this.apiPort),
            PGDATA: this.pgdata,
            RUN_DIR: this.runDir,
            KUBECONFIG: this.cluster.controlPlane.kubeconfig,
            KUBECONFIG_CONTEXT: "local",
            SUPERUSER_PASSWORD: PASSWORDS.superuser,
            REPLICATION_PASSWORD: PASSWORDS.replication,
            APP_PASSWORD: PASSWORDS.app,
            API_PASSWORD: PASSWORDS.api,
            POD_CIDR: "127.0.0.1/32",
            CLIENT_CIDR: "127.0.0.1/32",
            DCS_CHECK_TIMEOUT: "20",
            ...this.cluster.env,
            ...extra,
        };
        return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
    }

    get running(): boolean {
        return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    }

    /** Starts the entrypoint (which execs Patroni) as the postgres user. */
    start(opts: MemberOptions = {}): void {
        if (this.running) throw new Error(`${this.name} already runs`);
        const out = fs.openSync(this.logFile, "a");
        const pg = postgresIdentity();
        this.child = spawn(path.join(this.cluster.podDir, "entrypoint.sh"), [], {
            env: this.env(opts.env),
            cwd: this.runDir,
            uid: pg.uid,
            gid: pg.gid,
            stdio: ["ignore", out, out],
            detached: true,
        });
        fs.closeSync(out);
        const child = this.child;
        this.exit = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    }

    /** The exit code of the last start, once it has exited. */
    async exited(timeoutMs: number): Promise<number | null> {
        if (!this.exit) throw new Error(`${this.name} was never started`);
        return Promise.race([
            this.exit,
            sleep(timeoutMs).then(() => {
                throw new Error(`${this.name} still runs after ${timeoutMs / 1000}s`);
            }),
        ]);
    }

    log(): string {
        return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, "utf8") : "";
    }

    postmasterPid(): number | undefined {
        const file = path.join(this.pgdata, "postmaster.pid");
        if (!fs.existsSync(file)) return undefined;
        const pid = Number(fs.readFileSync(file, "utf8").split("\n")[0]);
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    }

    /**
     * A crash, as the end of a container is one: SIGKILL to Patroni, the postmaster and every backend at once.
     * (Killing Patroni alone would leave the postmaster running; in a pod, Patroni is PID 1 and takes it along.)
     */
    async crash(): Promise<void> {
        const pids = new Set<number>();
        if (this.child?.pid && this.running) pids.add(this.child.pid);
        // The entrypoint's background helpers (backup agent, settings applier) are in its process group; in a pod
        // they end with the container.
        if (this.child?.pid) {
            try {
                process.kill(-this.child.pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }
        const pm = this.postmasterPid();
        if (pm) {
            pids.add(pm);
            for (const p of spawnSync("pgrep", ["-P", String(pm)], { encoding: "utf8" })
                .stdout.split("\n")
                .filter(Boolean))
                pids.add(Number(p));
        }
        for (const p of pids) {
            try {
                process.kill(p, "SIGKILL");
            } catch {
                /* already gone */
            }
        }
        if (this.exit) await this.exited(10000);
    }

    /** SIGSTOP to Patroni alone (PostgreSQL and the entrypoint's helpers run on): its HA loop stands still until resume(). */
    pause(): void {
        if (!this.running) throw new Error(`${this.name} does not run`);
        process.kill(this.child!.pid!, "SIGSTOP");
    }

    resume(): void {
        process.kill(this.child!.pid!, "SIGCONT");
    }

    /** SIGTERM to Patroni (what the kubelet sends): it stops PostgreSQL and releases the leader key. */
    async stop(timeoutMs = 60000): Promise<void> {
        if (!this.running) return;
        this.child!.kill("SIGTERM");
        await this.exited(timeoutMs);
        // What outlives Patroni in its process group (the entrypoint's helpers) ends with it, as in a container.
        try {
            process.kill(-this.child!.pid!, "SIGKILL");
        } catch {
            /* gone */
        }
    }

    async rest(route: string, init?: RequestInit): Promise<any> {
        const r = await fetch(`http://127.0.0.1:${this.apiPort}${route}`, {
            ...init,
            signal: AbortSignal.timeout(5000),
        });
        const text = await r.text();
        try {
            return { status: r.status, body: JSON.parse(text) };
        } catch {
            return { status: r.status, body: text };
        }
    }

    /** Patroni's view of this member (GET /patroni), or undefined when its REST API does not answer. */
    async state(): Promise<any | undefined> {
        try {
            return (await this.rest("/patroni")).body;
        } catch {
            return undefined;
        }
    }

    sql(query: string, opts: { user?: string; db?: string; sslmode?: string } = {}): string {
        return psql(this.pgPort, query, { ca: this.cluster.ca, ...opts });
    }

    /** Runs a command of the pod (pod.py ...) as the postgres user with this member's environment. */
    /** podCommand, without blocking: for a hook that waits for something the test then does. */
    podCommandAsync(
        args: string[],
        extra: Record<string, string | undefined> = {},
    ): Promise<{ status: number; stdout: string; stderr: string }> {
        const pg = postgresIdentity();
        const child = spawn(PYTHON, [path.join(this.cluster.podDir, "pod.py"), ...args], {
            env: this.env(extra),
            uid: pg.uid,
            gid: pg.gid,
            cwd: this.runDir,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
        child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
        return new Promise((resolve) => child.once("exit", (code) => resolve({ status: code ?? -1, stdout, stderr })));
    }

    podCommand(
        args: string[],
        extra: Record<string, string | undefined> = {},
    ): { status: number; stdout: string; stderr: string } {
        const pg = postgresIdentity();
        const r = spawnSync(PYTHON, [path.join(this.cluster.podDir, "pod.py"), ...args], {
            encoding: "utf8",
            env: this.env(extra),
            uid: pg.uid,
            gid: pg.gid,
            cwd: this.runDir,
            timeout: 120000,
        });
        return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    }
}

/**
 * A Patroni cluster of `size` members in its own namespace of the control plane. With TLS (the default, as the
 * program deploys it): a CA and a server certificate for 127.0.0.1 from components/postgres-tls.ts, the members
 * verify each other's CA, and every client here connects with sslmode verify-full.
 */
export class PatroniCluster {
    readonly root: string;
    readonly podDir: string;
    readonly members: Member[] = [];
    /** The CA clients verify the servers with; undefined without TLS. */
    readonly ca?: string;
    readonly env: Record<string, string>;

    private constructor(
        readonly controlPlane: ControlPlane,
        readonly namespace: string,
        env: Record<string, string>,
        tls: boolean,
    ) {
        this.root = tempDir(`patroni-${namespace}-`);
        this.podDir = installPodFiles(path.join(this.root, "pod"));
        this.env = { ...env };
        if (tls) {
            const dir = path.join(this.root, "tls");
            fs.mkdirSync(dir);
            const m = tlsMaterial(`test-seed-${namespace}-${Date.now()}`, ["localhost"], ["127.0.0.1"]);
            const pg = postgresIdentity();
            for (const [f, body, mode] of [
                ["ca.crt", m.caCert, 0o644],
                ["tls.crt", m.cert, 0o644],
                ["tls.key", m.key, 0o600],
            ] as const) {
                fs.writeFileSync(path.join(dir, f), body, { mode });
                fs.chownSync(path.join(dir, f), pg.uid, pg.gid);
            }
            this.ca = path.join(dir, "ca.crt");
            this.env.TLS_DIR ??= dir;
        }
    }

    static async create(
        controlPlane: ControlPlane,
        namespace: string,
        size: number,
        env: Record<string, string> = {},
        opts: { tls?: boolean } = {},
    ): Promise<PatroniCluster> {
        const c = new PatroniCluster(controlPlane, namespace, env, opts.tls ?? true);
        for (let i = 0; i < size; i++) c.members.push(new Member(c, i, await freePort(), await freePort()));
        controlPlane.createNamespace(
            namespace,
            c.members.map((m) => m.name),
        );
        return c;
    }

    /** A libpq DSN over every member that only a writable one accepts: what a failover-aware client uses. */
    dsn(): string {
        return (
            `host=${this.members.map(() => "127.0.0.1").join(",")} port=${this.members.map((m) => m.pgPort).join(",")} ` +
            `dbname=${APP_DB} user=${APP_USER} password=${PASSWORDS.app} target_session_attrs=read-write connect_timeout=2${this.sslParams()}`
        );
    }

    memberDsns(): string[] {
        return this.members.map(
            (m) =>
                `host=127.0.0.1 port=${m.pgPort} dbname=${APP_DB} user=${APP_USER} password=${PASSWORDS.app}${this.sslParams()}`,
        );
    }

    private sslParams(): string {
        return this.ca ? ` sslmode=verify-full sslrootcert=${this.ca}` : "";
    }

    async cluster(): Promise<any> {
        for (const m of this.members) {
            const s = await m.rest("/cluster").catch(() => undefined);
            if (s?.status === 200) return s.body;
        }
        throw new Error("no member answers GET /cluster");
    }

    /** Waits until one member leads and `streaming` others replicate from it (running, lag known). */
    /** A leader whose server accepts writes, `streaming` running replicas streaming from it, one synchronously unless off. */
    async healthy(streaming: number, timeoutMs = 90000): Promise<{ leader: Member; replicas: Member[] }> {
        return waitFor(`a leader and ${streaming} running replicas`, timeoutMs, async () => {
            const c = await this.cluster();
            const leader = c.members.find((m: any) => m.role === "leader" && m.state === "running");
            const replicas = c.members.filter((m: any) => m.role !== "leader" && m.state === "running");
            if (!leader || replicas.length < streaming) return undefined;
            const l = this.members.find((m) => m.name === leader.name)!;
            // The lock is taken before the promotion ends: a leader is healthy once its server accepts writes.
            if (l.sql("SELECT pg_is_in_recovery()") !== "f") return undefined;
            if (
                streaming > 0 &&
                Number(l.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) < streaming
            )
                return undefined;
            // Synchronous: Patroni picks the standby a loop after it streams, and records it in the DCS a loop later;
            // until then a switchover is refused ("can not find sync_standby").
            if (
                streaming > 0 &&
                (this.env.SYNCHRONOUS_MODE ?? "on") !== "off" &&
                !c.members.some((m: any) => m.role === "sync_standby")
            )
                return undefined;
            return { leader: l, replicas: this.members.filter((m) => replicas.some((r: any) => r.name === m.name)) };
        });
    }

    async leader(): Promise<Member> {
        return (await this.healthy(0)).leader;
    }

    async stop(): Promise<void> {
        await Promise.all(this.members.map((m) => m.stop().catch(() => m.crash())));
    }

    /** Stops every member and removes the volumes, the namespace's Patroni state included. */
    async destroy(): Promise<void> {
        await Promise.all(this.members.map((m) => m.crash().catch(() => undefined)));
        try {
            this.controlPlane.kubectl(["delete", "namespace", this.namespace, "--wait=false"]);
        } catch {
            /* gone */
        }
        if (!process.env.KEEP_TEST_DIRS) fs.rmSync(this.root, { recursive: true, force: true });
    }
}

// --------------------------------------------------------------------------------------------- the writer

/** Writers not stopped yet: a failed test's writer is stopped after it (withControlPlane). */
const LIVE_WRITERS = new Set<Writer>();

/** writer.py as a child: every acknowledged id with its time, and every error. */
export class Writer {
    readonly acked = new Map<number, number>();
    readonly errors: Array<{ at: number; message: string }> = [];
    private child: ChildProcess;
    private done: Promise<void>;
    private buffer = "";

    constructor(dsn: string, intervalMs = 20) {
        this.child = spawn(PYTHON, [WRITER, "write", dsn, String(intervalMs)], {
            stdio: ["ignore", "pipe", "inherit"],
        });
        this.child.stdout!.on("data", (b: Buffer) => this.consume(b.toString()));
        this.done = new Promise((resolve) => this.child.once("exit", () => resolve()));
        LIVE_WRITERS.add(this);
    }

    private consume(text: string): void {
        this.buffer += text;
        const lines = this.buffer.split("\n");
        this.buffer = lines.pop() ?? "";
        for (const line of lines) {
            const f = line.split(" ");
            if (f[0] === "ack") this.acked.set(Number(f[1]), Number(f[2]));
            else if (f[0] === "err") this.errors.push({ at: Number(f[1]), message: f.slice(2).join(" ") });
        }
    }

    /** The first acknowledgement after `t` (epoch ms), or undefined. */
    firstAckAfter(t: number): number | undefined {
        let first: number | undefined;
        for (const at of this.acked.values()) if (at > t && (first === undefined || at < first)) first = at;
        return first;
    }

    async waitForAcks(n: number, timeoutMs = 30000): Promise<void> {
        const target = this.acked.size + n;
        await waitFor(`${n} more acknowledged writes`, timeoutMs, () => this.acked.size >= target || undefined);
    }

    /** SIGTERM (it ends between writes); SIGKILL after 10 s, for a writer blocked in a commit that never returns. */
    async stop(): Promise<void> {
        LIVE_WRITERS.delete(this);
        this.child.kill("SIGTERM");
        const timer = setTimeout(() => this.child.kill("SIGKILL"), 10000);
        await this.done;
        clearTimeout(timer);
    }
}

/** writer.py sample: which members accept writes, every `intervalMs`. */
export class Sampler {
    readonly samples: Array<{ at: number; writable: number[] }> = [];
    private child: ChildProcess;
    private done: Promise<void>;
    private buffer = "";

    constructor(dsns: string[], intervalMs = 100) {
        this.child = spawn(PYTHON, [WRITER, "sample", String(intervalMs), ...dsns], {
            stdio: ["ignore", "pipe", "inherit"],
        });
        this.child.stdout!.on("data", (b: Buffer) => {
            this.buffer += b.toString();
            const lines = this.buffer.split("\n");
            this.buffer = lines.pop() ?? "";
            for (const line of lines) {
                const [kind, at, list] = line.split(" ");
                if (kind === "sample")
                    this.samples.push({ at: Number(at), writable: list ? list.split(",").map(Number) : [] });
            }
        });
        this.done = new Promise((resolve) => this.child.once("exit", () => resolve()));
    }

    /** Samples in which more than one member accepted writes. */
    splitBrain(): Array<{ at: number; writable: number[] }> {
        return this.samples.filter((s) => s.writable.length > 1);
    }

    async stop(): Promise<void> {
        this.child.kill("SIGTERM");
        await this.done;
    }
}

/** The ids of `writes` on a member, sorted. */
export function idsOn(member: Member): number[] {
    const out = member.sql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM writes", {
        user: APP_USER,
    });
    return out === "" ? [] : out.split(",").map(Number);
}

/** Acknowledged ids missing from `ids`. */
export function missingAcks(writer: Writer, ids: number[]): number[] {
    const have = new Set(ids);
    return [...writer.acked.keys()].filter((id) => !have.has(id)).sort((a, b) => a - b);
}

/** Count and checksum of a table's rows (ordered, every column), to compare members and steps. */
export function tableDigest(member: Member, table = "writes"): { count: number; md5: string } {
    const out = member.sql(
        `SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM ${table} t`,
        { user: APP_USER },
    );
    const [count, md5] = out.split(" ");
    return { count: Number(count), md5: md5 ?? "" };
}

/**
 * For a describe block: a control plane started before its tests. A cluster made through `cluster()` during a test
 * is destroyed after that test, pass or fail (with any writer still running), so a failed case leaves nothing
 * running into the next one; one made in a `before` hook is destroyed after the block, with the control plane.
 */
export function withControlPlane(): {
    controlPlane: () => ControlPlane;
    cluster: (
        ns: string,
        size: number,
        env?: Record<string, string>,
        opts?: { tls?: boolean },
    ) => Promise<PatroniCluster>;
} {
    let cp: ControlPlane | undefined;
    const clusters: PatroniCluster[] = [];
    let testClusters: PatroniCluster[] | undefined;
    before(async function () {
        this.timeout(120000);
        cp = await ControlPlane.start();
    });
    beforeEach(() => {
        testClusters = [];
    });
    afterEach(async function () {
        this.timeout(120000);
        for (const w of [...LIVE_WRITERS]) await w.stop();
        for (const c of testClusters ?? []) await c.destroy();
        testClusters = undefined;
    });
    after(async function () {
        this.timeout(120000);
        for (const c of clusters) await c.destroy();
        cp?.stop();
    });
    return {
        controlPlane: () => cp!,
        cluster: async (ns, size, env = {}, opts = {}) => {
            const c = await PatroniCluster.create(cp!, ns, size, env, opts);
            (testClusters ?? clusters).push(c);
            return c;
        },
    };
}

/** A writer through the multi-host DSN and a sampler of every member, until `stop`. */
export class Load {
    readonly writer: Writer;
    readonly sampler: Sampler;
    constructor(cluster: PatroniCluster) {
        this.writer = new Writer(cluster.dsn());
        this.sampler = new Sampler(cluster.memberDsns());
    }

    async stop(): Promise<void> {
        await this.writer.stop();
        await this.sampler.stop();
    }
}

// ----------------------------------------------------------------------------------------- object storage

/**
 * versitygw (an S3-compatible server, built from Go modules by scripts/toolchain.sh) with its posix backend, over
 * TLS on loopback: pgBackRest 2.45 speaks only HTTPS to S3. A throwaway CA and a certificate for `localhost`
 * (2.45 does not match IP addresses in certificates); path-style URLs.
 */
export class ObjectStore {
    readonly dir: string;
    readonly data: string;
    readonly ca: string;
    readonly bucket = "backups";
    readonly key = "test-access-key";
    readonly secret = "test-secret-key-0123456789";
    port = 0;
    private child?: ChildProcess;

    constructor() {
        this.dir = tempDir("objectstore-");
        this.data = path.join(this.dir, "data");
        fs.mkdirSync(path.join(this.data, this.bucket), { recursive: true });
        const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: this.dir, stdio: "ignore" });
        ssl([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        ssl([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
        ]);
        fs.writeFileSync(path.join(this.dir, "tls.ext"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
        ssl([
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "tls.ext",
            "-out",
            "tls.crt",
        ]);
        this.ca = path.join(this.dir, "ca.crt");
        execFileSync("chmod", ["a+r", this.ca]);
    }

    async start(): Promise<void> {
        if (this.child && this.child.exitCode === null) return;
        this.port ||= await freePort();
        const bin = path.join(
            execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin", "versitygw"], { encoding: "utf8" }).trim(),
            "versitygw",
        );
        const out = fs.openSync(path.join(this.dir, "versitygw.log"), "a");
        this.child = spawn(
            bin,
            [
                "--quiet",
                "--access",
                this.key,
                "--secret",
                this.secret,
                "--port",
                `127.0.0.1:${this.port}`,
                "--cert",
                path.join(this.dir, "tls.crt"),
                "--key",
                path.join(this.dir, "tls.key"),
                "posix",
                this.data,
            ],
            { stdio: ["ignore", out, out] },
        );
        fs.closeSync(out);
        await waitFor(
            "versitygw listening",
            20000,
            () =>
                new Promise<boolean | undefined>((resolve) => {
                    const socket = net.connect(this.port, "127.0.0.1", () => {
                        socket.end();
                        resolve(true);
                    });
                    socket.once("error", () => resolve(undefined));
                }),
        );
    }

    async stop(): Promise<void> {
        if (!this.child || this.child.exitCode !== null) return;
        const child = this.child;
        await new Promise<void>((resolve) => {
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
        });
    }

    /** The environment a member gets for a repository at `repoPath` (and a restore from `restoreFrom`). */
    env(repoPath: string, extra: Record<string, string> = {}): Record<string, string> {
        return {
            BACKUP_S3_BUCKET: this.bucket,
            BACKUP_S3_ENDPOINT: "localhost",
            BACKUP_S3_PORT: String(this.port),
            BACKUP_S3_REGION: "us-east-1",
            BACKUP_S3_URI_STYLE: "path",
            BACKUP_S3_CA_FILE: this.ca,
            BACKUP_S3_KEY: this.key,
            BACKUP_S3_KEY_SECRET: this.secret,
            BACKUP_CIPHER_PASS: "test-cipher-passphrase",
            BACKUP_PATH: repoPath,
            BACKUP_IO_TIMEOUT: "5",
            BACKUP_AGENT_INTERVAL: "2",
            ...extra,
        };
    }

    /** Object keys under a repository path (files of the posix backend). */
    files(repoPath: string): string[] {
        const root = path.join(this.data, this.bucket, repoPath.replace(/^\//, ""));
        const out: string[] = [];
        const walk = (d: string) => {
            if (!fs.existsSync(d)) return;
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                const p = path.join(d, e.name);
                if (e.isDirectory()) walk(p);
                else out.push(path.relative(root, p));
            }
        };
        walk(root);
        return out.sort();
    }

    remove(): void {
        if (!process.env.KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/** For a describe block: an object store started before its tests and removed after them. */
export function withObjectStore(): () => ObjectStore {
    let store: ObjectStore | undefined;
    before(async function () {
        this.timeout(60000);
        store = new ObjectStore();
        await store.start();
    });
    after(async function () {
        await store?.stop();
        store?.remove();
    });
    return () => store!;
}

/** Backups the repository lists (pod.py backup-status on `m`). */
export function backups(m: Member): any[] {
    const r = m.podCommand(["backup-status"]);
    if (r.status !== 0) throw new Error(`backup-status on ${m.name} failed: ${r.stderr}`);
    return JSON.parse(r.stdout).backups ?? [];
}

/** Switches `m` to a new WAL segment and waits until its archiver has pushed the one before; returns its name. */
export async function archiveNow(m: Member, timeoutMs = 60000): Promise<string> {
    const wal = m.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    m.sql("SELECT pg_switch_wal()");
    await waitFor(
        `${wal} archived by ${m.name}`,
        timeoutMs,
        () => m.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= wal || undefined,
    );
    return wal;
}
