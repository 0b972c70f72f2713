/**
 * Real processes for images/api/tests/tasks-api.spec.ts: a throwaway PostgreSQL 15 on a loopback port, and the app
 * run from a root-owned copy of what the image copies to /app, by Debian's Python, as uid 10001 when we are root.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** The API image's build context (images/api). */
export const APP_SOURCE = path.resolve(__dirname, "..");
/** What the Dockerfile copies into /app. */
const IMAGE_FILES = ["gunicorn.conf.py", "tasks_api", "migrations"];
export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";
/** Debian's interpreter: the one that sees python3-flask & co. (a pyenv or venv python3 on PATH does not). */
export const PYTHON = process.env.APP_PYTHON ?? "/usr/bin/python3";

const isRoot = process.getuid?.() === 0;
/** The image's user; only root can switch to it. */
export const APP_IDENTITY = isRoot ? { uid: 10001, gid: 10001 } : undefined;

function postgresIdentity(): { uid: number; gid: number } | undefined {
    if (!isRoot) return undefined;
    const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"], { encoding: "utf8" }).stdout.trim());
    const uid = id("-u");
    if (!Number.isInteger(uid) || uid <= 0)
        throw new Error("running as root but there is no `postgres` user: apt-get install -y postgresql-15");
    return { uid, gid: id("-g") };
}

const PYTHON_MODULES: Record<string, string> = {
    flask: "python3-flask",
    flask_sqlalchemy: "python3-flask-sqlalchemy",
    flask_migrate: "python3-flask-migrate",
    psycopg2: "python3-psycopg2",
    gunicorn: "gunicorn",
    // pkg_resources, which gunicorn 20.1 imports, with setuptools' metadata.
    setuptools: "python3-setuptools",
};

/** Fails (never skips) naming the Debian packages to install when the servers or the Python stack are missing. */
export function assertDependencies(): void {
    const missing: string[] = [];
    if (["initdb", "pg_ctl", "postgres", "psql", "pg_dump"].some((b) => !fs.existsSync(path.join(PG_BIN, b))))
        missing.push("postgresql-15");
    if (!fs.existsSync(PYTHON)) {
        missing.push("python3", ...Object.values(PYTHON_MODULES));
    } else {
        const probe = `import importlib.util, json\nprint(json.dumps([m for m in ${JSON.stringify(Object.keys(PYTHON_MODULES))} if importlib.util.find_spec(m) is None]))`;
        const r = spawnSync(PYTHON, ["-c", probe], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`${PYTHON} failed to run: ${r.stderr}`);
        missing.push(...(JSON.parse(r.stdout) as string[]).map((m) => PYTHON_MODULES[m]));
    }
    if (missing.length > 0) {
        throw new Error(
            `missing Debian packages: ${missing.join(" ")}. Install them with \`npm run setup\` (scripts/ensure-packages.sh) ` +
                `(or apt-get install -y ${missing.join(" ")}) and re-run; these tests never skip`,
        );
    }
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 0755 temp directory (others must traverse it), owned by `owner` when given. */
export function tempDir(prefix: string, owner?: { uid: number; gid: number }): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(dir, 0o755);
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    return dir;
}

/** Gives dir and everything under it to owner (a scratch copy the app user must write to). */
export function chownTree(dir: string, owner: { uid: number; gid: number }): void {
    fs.chownSync(dir, owner.uid, owner.gid);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) chownTree(p, owner);
        else fs.chownSync(p, owner.uid, owner.gid);
    }
}

/** Copies what the Dockerfile copies to /app (root-owned, read-only to the app user), without bytecode caches. */
export function installImage(dest: string): void {
    fs.mkdirSync(dest, { recursive: true });
    for (const f of IMAGE_FILES) {
        fs.cpSync(path.join(APP_SOURCE, f), path.join(dest, f), {
            recursive: true,
            filter: (src) => !src.includes("__pycache__"),
        });
    }
}

/** Every file under dir with its size and mtime: equal before and after means nothing was written. */
export function snapshot(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            const st = fs.statSync(p);
            out.push(`${path.relative(dir, p)} ${e.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`);
            if (e.isDirectory()) walk(p);
        }
    };
    walk(dir);
    return out.sort();
}

export interface Result {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** Runs a command to completion (as the app user when root); kills it after timeoutMs. */
export function run(
    cmd: string,
    args: string[],
    opts: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number },
): Promise<Result> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, {
            env: opts.env,
            cwd: opts.cwd,
            uid: APP_IDENTITY?.uid,
            gid: APP_IDENTITY?.gid,
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
        child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60000);
        child.once("error", reject);
        child.once("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr });
        });
    });
}

const cleanups = new Set<() => void>();
// Last resort if mocha exits without running `after` hooks: nothing started here may outlive the run.
process.once("exit", () => {
    for (const c of cleanups) c();
});

/** A PostgreSQL 15 cluster in a temp directory, listening on 127.0.0.1 only, run as the postgres user. */
export class PgServer {
    readonly root: string;
    private readonly identity = postgresIdentity();
    private readonly cleanup = () => this.stop("immediate");
    private frozen = false;
    private readonly thawCleanup = () => this.thaw();

    constructor(readonly port: number) {
        this.root = tempDir("app-pg-", this.identity);
        const init = this.exec("initdb", [
            "-D",
            this.dataDir,
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]);
        if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    }

    get dataDir(): string {
        return path.join(this.root, "data");
    }

    start(): void {
        const options = `-c listen_addresses=127.0.0.1 -p ${this.port} -c unix_socket_directories=${this.root} -c fsync=off -c full_page_writes=off`;
        const r = this.exec("pg_ctl", [
            "-D",
            this.dataDir,
            "-l",
            path.join(this.root, "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ]);
        if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.stderr}\n${this.log()}`);
        cleanups.add(this.cleanup);
    }

    stop(mode: "fast" | "immediate" = "fast"): void {
        if (!fs.existsSync(path.join(this.dataDir, "postmaster.pid"))) return;
        // A stopped postmaster would get the shutdown signal only once continued.
        this.thaw();
        const r = this.exec("pg_ctl", ["-D", this.dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
        if (r.status !== 0) throw new Error(`pg_ctl stop failed: ${r.stderr}`);
        cleanups.delete(this.cleanup);
    }

    /** The postmaster and its children (backends, background processes), postmaster first. */
    pids(): number[] {
        const postmaster = Number(fs.readFileSync(path.join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        const children = fs.readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, "utf8").trim();
        return [postmaster, ...(children ? children.split(/\s+/).map(Number) : [])];
    }

    /**
     * SIGSTOP to the postmaster and every backend: the kernel still accepts connections and acknowledges every
     * packet, PostgreSQL answers nothing (what a hung leader looks like to a client). thaw() or stop() resumes it.
     */
    freeze(): void {
        for (const pid of this.pids()) process.kill(pid, "SIGSTOP");
        this.frozen = true;
        cleanups.add(this.thawCleanup);
    }

    thaw(): void {
        if (!this.frozen) return;
        for (const pid of this.pids().reverse()) process.kill(pid, "SIGCONT");
        this.frozen = false;
        cleanups.delete(this.thawCleanup);
    }

    log(): string {
        const file = path.join(this.root, "server.log");
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    }

    /** psql as the superuser over the Unix socket, one -c (a single transaction), results unaligned. */
    sql(database: string, sql: string): string {
        const r = this.exec("psql", [
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            this.root,
            "-p",
            String(this.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]);
        if (r.status !== 0) throw new Error(`psql -d ${database} failed: ${sql}\n${r.stderr}`);
        return r.stdout.trim();
    }

    /** `pg_dump --schema-only` of one table, without comments and pg_dump's per-run \restrict keys. */
    tableSchema(database: string, table: string): string {
        const r = this.exec("pg_dump", [
            "-h",
            this.root,
            "-p",
            String(this.port),
            "-U",
            "postgres",
            "-d",
            database,
            "--schema-only",
            "--no-owner",
            "-t",
            table,
        ]);
        if (r.status !== 0) throw new Error(`pg_dump -d ${database} failed: ${r.stderr}`);
        return r.stdout
            .split("\n")
            .filter((l) => l.trim() && !l.startsWith("--") && !/^\\(un)?restrict /.test(l))
            .join("\n");
    }

    remove(): void {
        this.stop("immediate");
        fs.rmSync(this.root, { recursive: true, force: true });
    }

    private exec(bin: string, args: string[]) {
        const r = spawnSync(path.join(PG_BIN, bin), args, {
            encoding: "utf8",
            cwd: "/",
            env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
            uid: this.identity?.uid,
            gid: this.identity?.gid,
            timeout: 90000,
        });
        return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? `${r.error ?? ""}` };
    }
}

/** gunicorn started the way the image's CMD starts it, in its own process group. */
export class AppServer {
    log = "";
    private child?: ChildProcess;
    private exited?: Promise<number | null>;
    private readonly cleanup = () => this.kill("SIGKILL");

    constructor(
        private readonly args: string[],
        private readonly env: NodeJS.ProcessEnv,
        private readonly cwd: string,
        readonly port: number,
    ) {}

    get pid(): number | undefined {
        return this.child?.pid;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    /** Resolves once /healthz answers 200; rejects if gunicorn exits first or takes longer than timeoutMs. */
    async start(timeoutMs = 30000): Promise<void> {
        if (this.child) throw new Error("the app is already running");
        const child = spawn(PYTHON, this.args, {
            env: this.env,
            cwd: this.cwd,
            uid: APP_IDENTITY?.uid,
            gid: APP_IDENTITY?.gid,
            detached: true,
        });
        child.stdout!.on("data", (b: Buffer) => (this.log += b.toString()));
        child.stderr!.on("data", (b: Buffer) => (this.log += b.toString()));
        this.child = child;
        this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
        cleanups.add(this.cleanup);
        let exitCode: number | null | undefined;
        void this.exited.then((c) => (exitCode = c));
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            await sleep(200);
            if (exitCode !== undefined) {
                this.child = undefined;
                cleanups.delete(this.cleanup);
                throw new Error(`gunicorn exited with ${exitCode} before serving:\n${this.log}`);
            }
            try {
                const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
                if (r.status === 200) return;
            } catch {
                // not listening yet
            }
            if (Date.now() > deadline) throw new Error(`gunicorn not serving after ${timeoutMs} ms:\n${this.log}`);
        }
    }

    /** SIGTERM (what the kubelet sends), then SIGKILL to the group after timeoutMs; resolves to the exit code. */
    async stop(timeoutMs = 25000): Promise<number | null> {
        const child = this.child;
        if (!child || !this.exited) return null;
        child.kill("SIGTERM");
        const timer = setTimeout(() => this.kill("SIGKILL"), timeoutMs);
        const code = await this.exited;
        clearTimeout(timer);
        this.kill("SIGKILL"); // any worker left behind
        this.child = undefined;
        cleanups.delete(this.cleanup);
        return code;
    }

    private kill(signal: NodeJS.Signals): void {
        if (!this.child?.pid) return;
        try {
            process.kill(-this.child.pid, signal);
        } catch {
            // the group is gone already
        }
    }
}

/**
 * A TCP proxy on loopback in front of a server, as a Kubernetes Service is in front of the leader. hangExisting()
 * stops forwarding on every connection open at that moment, in both directions, and keeps them open: to the client
 * the server behind them is alive at the TCP level (the proxy's kernel acknowledges everything) and never answers
 * again. Connections opened later are forwarded as before, as if the Service now led to a new leader.
 */
export class TcpProxy {
    private server?: net.Server;
    private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; hung: boolean }>();
    port = 0;

    constructor(private readonly targetPort: number) {}

    async start(): Promise<void> {
        this.server = net.createServer((client) => {
            const pair = { client, upstream: net.connect(this.targetPort, "127.0.0.1"), hung: false };
            this.pairs.add(pair);
            client.pipe(pair.upstream);
            pair.upstream.pipe(client);
            const close = () => {
                this.pairs.delete(pair);
                client.destroy();
                pair.upstream.destroy();
            };
            for (const socket of [client, pair.upstream]) {
                socket.on("error", close);
                socket.on("close", close);
            }
        });
        await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
        this.port = (this.server.address() as net.AddressInfo).port;
        cleanups.add(this.cleanup);
    }

    /** Connections open now: [forwarding, hung]. */
    get connections(): [number, number] {
        const all = [...this.pairs];
        return [all.filter((p) => !p.hung).length, all.filter((p) => p.hung).length];
    }

    hangExisting(): void {
        for (const pair of this.pairs) {
            pair.hung = true;
            for (const socket of [pair.client, pair.upstream]) {
                socket.unpipe();
                socket.pause();
            }
        }
    }

    async stop(): Promise<void> {
        this.cleanup();
        cleanups.delete(this.cleanup);
    }

    private readonly cleanup = () => {
        for (const pair of this.pairs) {
            pair.client.destroy();
            pair.upstream.destroy();
        }
        this.pairs.clear();
        this.server?.close();
        this.server = undefined;
    };
}
