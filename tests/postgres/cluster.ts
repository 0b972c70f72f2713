/**
 * Runs scripts/postgres/entrypoint.sh against Debian's PostgreSQL binaries, as the pods run it: one process
 * per "pod", the contract's environment, a volume directory per pod with PGDATA a subdirectory of it. Servers
 * listen on 127.0.0.1 on free ports and run as the `postgres` user when the tests run as root.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";
export const ENTRYPOINT = path.resolve(__dirname, "../../scripts/postgres/entrypoint.sh");
export const APP_USER = "stateful-flask-user";
export const APP_DB = "stateful-flask-db";
export const APP_PASSWORD = "app-password";
export const REPLICATION_PASSWORD = "repl:pass\\word'";

/** Fails (never skips) when the server binaries are missing, saying how to install them. */
export function assertPostgresInstalled(): void {
    const missing = ["postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_isready", "psql", "pg_controldata"].filter(
        (b) => !fs.existsSync(path.join(PG_BIN, b)),
    );
    if (missing.length > 0) {
        throw new Error(
            `PostgreSQL 15 binaries missing from ${PG_BIN} (${missing.join(", ")}): run ` +
                "`apt-get install -y postgresql` (or tests/postgres/ensure-postgres.sh) and re-run the tests",
        );
    }
}

/** The OS identity servers run as: the postgres user when we are root (postgres refuses root), else us. */
function serverIdentity(): { uid: number; gid: number } | undefined {
    if (process.getuid?.() !== 0) return undefined;
    const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"], { encoding: "utf8" }).stdout.trim());
    const uid = id("-u");
    const gid = id("-g");
    if (!Number.isInteger(uid) || uid <= 0) throw new Error("running as root but there is no `postgres` user; install postgresql");
    return { uid, gid };
}
export const IDENTITY = serverIdentity();

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

/** A temp directory the server user owns: holds one "volume" directory per pod. */
export function makeRoot(): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "pg-replication-"));
    fs.chmodSync(root, 0o755);
    return root;
}

/** A directory owned by the server user (a pod's volume, or anything it must write). */
export function makeOwnedDir(dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    if (IDENTITY) fs.chownSync(dir, IDENTITY.uid, IDENTITY.gid);
    return dir;
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
        try {
            const value = probe();
            if (value !== undefined) return value;
        } catch (e) {
            lastError = e;
        }
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
        await sleep(200);
    }
}

/** Runs a PG binary synchronously as the server user. */
export function runAsServerUser(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(path.join(PG_BIN, bin), args, {
        encoding: "utf8",
        env: { PATH: `${PG_BIN}:/usr/bin:/bin`, LANG: "C.UTF-8", ...env },
        uid: IDENTITY?.uid,
        gid: IDENTITY?.gid,
        cwd: "/",
    });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** One psql statement over TCP with a password, as a client of the Service would connect. */
export function psql(port: number, sql: string, opts: { user?: string; password?: string; db?: string } = {}): string {
    const r = spawnSync(
        path.join(PG_BIN, "psql"),
        ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", opts.user ?? APP_USER, "-d", opts.db ?? APP_DB, "-c", sql],
        { encoding: "utf8", env: { PATH: "/usr/bin:/bin", PGPASSWORD: opts.password ?? APP_PASSWORD, PGCONNECT_TIMEOUT: "5" } },
    );
    if (r.status !== 0) throw new Error(`psql on port ${port} failed (${r.status}): ${sql}\n${r.stderr}`);
    return r.stdout.trim();
}

const running = new Set<Pod>();

/** A pod: its volume directory, its environment, and the entrypoint process while it runs. */
export class Pod {
    readonly volume: string;
    readonly pgdata: string;
    private child?: ChildProcess;
    private exited?: Promise<number | null>;
    /** Everything the entrypoint and postgres wrote, over all starts. */
    log = "";
    /** Output of the most recent start only. */
    lastLog = "";

    constructor(
        root: string,
        readonly name: string,
        readonly port: number,
        readonly env: Record<string, string>,
    ) {
        this.volume = makeOwnedDir(path.join(root, name));
        this.pgdata = path.join(this.volume, "pgdata");
    }

    get pid(): number | undefined {
        return this.child?.pid;
    }

    environment(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
        const env: NodeJS.ProcessEnv = {
            PATH: `${PG_BIN}:/usr/bin:/bin`,
            LANG: "C.UTF-8",
            PGDATA: this.pgdata,
            PGPORT: String(this.port),
            POD_NAME: this.name,
            LISTEN_ADDRESSES: "127.0.0.1",
            REPLICATION_CIDR: "127.0.0.1/32",
            CLIENT_CIDR: "127.0.0.1/32",
            ...this.env,
            ...overrides,
        };
        for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
        return env;
    }

    /** Starts the entrypoint and resolves once the server accepts connections; rejects if it exits first. */
    async start(timeoutMs = 60000, overrides: Record<string, string | undefined> = {}): Promise<void> {
        if (this.child) throw new Error(`${this.name} is already running`);
        this.lastLog = "";
        const child = spawn(ENTRYPOINT, [], { env: this.environment(overrides), uid: IDENTITY?.uid, gid: IDENTITY?.gid, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
        const append = (b: Buffer) => {
            this.log += b.toString();
            this.lastLog += b.toString();
        };
        child.stdout!.on("data", append);
        child.stderr!.on("data", append);
        this.child = child;
        running.add(this);
        this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
        let exitCode: number | null | undefined;
        void this.exited.then((c) => (exitCode = c));
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            await sleep(250);
            if (exitCode !== undefined) {
                this.child = undefined;
                running.delete(this);
                throw new Error(`${this.name} exited with ${exitCode} before accepting connections:\n${this.lastLog}`);
            }
            const ready = spawnSync(path.join(PG_BIN, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(this.port)]);
            if (ready.status === 0) return;
            if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.lastLog}`);
        }
    }

    /** Sends a signal to the process the entrypoint exec'd into and waits for it to exit. */
    async stop(signal: NodeJS.Signals = "SIGINT", timeoutMs = 30000): Promise<number | null> {
        const child = this.child;
        if (!child || !this.exited) return null;
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        const code = await this.exited;
        clearTimeout(timer);
        this.child = undefined;
        running.delete(this);
        return code;
    }

    /** Runs the entrypoint expecting it to exit (bad environment, refusals); returns its exit code and output. */
    async runToExit(overrides: Record<string, string | undefined> = {}, asRoot = false): Promise<{ code: number | null; output: string }> {
        const id = asRoot ? undefined : IDENTITY;
        const child = spawn(ENTRYPOINT, [], { env: this.environment(overrides), uid: id?.uid, gid: id?.gid, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout!.on("data", (b: Buffer) => (output += b.toString()));
        child.stderr!.on("data", (b: Buffer) => (output += b.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), 30000);
        const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
        clearTimeout(timer);
        return { code, output };
    }

    sql(sql: string): string {
        return psql(this.port, sql);
    }

    inode(relative = ""): number {
        return fs.statSync(path.join(this.pgdata, relative)).ino;
    }
}

/** Stops every pod still running (after a failed test) so no server outlives the run. */
export async function stopAll(): Promise<void> {
    await Promise.all([...running].map((p) => p.stop("SIGINT", 10000)));
}
