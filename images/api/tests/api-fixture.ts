/**
 * What the API specs share: the Dockerfile's settings, the pod's environment, an HTTP client that keeps the
 * answer's status, headers and timing, and ApiFixture: this release's image files on a throwaway PostgreSQL 15 with
 * the schema its migration Job makes, and gunicorn started as the image's CMD starts it.
 */
import { strictEqual } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseDockerfile } from "../../../scripts/images/dockerfile";
import {
    APP_SOURCE,
    AppServer,
    assertDependencies,
    freePort,
    installImage,
    PgServer,
    PYTHON,
    type Result,
    run,
    tempDir,
} from "./harness";

export const USER = "stateful-flask-user";
export const PASSWORD = "AppPassw0rd";

/** The Dockerfile's settings, parsed by the same parser the local image builder uses. */
export function dockerfile() {
    const instructions = parseDockerfile(
        fs.readFileSync(path.join(APP_SOURCE, "Dockerfile"), "utf8"),
        "images/api/Dockerfile",
    );
    const env: Record<string, string> = {};
    const of = <K extends string>(kind: K) => instructions.filter((i) => i.kind === kind) as any[];
    for (const i of of("ENV")) for (const [k, v] of i.vars) env[k] = v;
    return {
        from: of("FROM").map((i) => i.image as string),
        user: of("USER").map((i) => i.user as string),
        workdir: of("WORKDIR").map((i) => i.path as string),
        expose: of("EXPOSE").flatMap((i) => i.ports as string[]),
        cmd: (of("CMD")[0]?.argv ?? []) as string[],
        copies: of("COPY").map((i) => `${(i.sources as string[]).join(" ")} -> ${i.dest}`),
        env,
    };
}

/** What the pod gets: the Dockerfile's ENV plus the Secret's keys (components/tasks-api.ts). */
export function podEnv(port: number, db: string): NodeJS.ProcessEnv {
    return {
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        HOME: "/nonexistent",
        ...dockerfile().env,
        DATABASE_URL: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${db}`,
        POSTGRES_HOST: "127.0.0.1",
        POSTGRES_PORT: String(port),
        POSTGRES_DB: db,
        POSTGRES_USER: USER,
        POSTGRES_PASSWORD: PASSWORD,
    };
}

/** gunicorn as the image's CMD runs it, from `imageDir` (the image's /app), on a free port given as PORT, as the
 * Deployment gives apiPort (gunicorn.conf.py binds 0.0.0.0:$PORT). */
export async function gunicornFor(imageDir: string, env: NodeJS.ProcessEnv): Promise<AppServer> {
    const port = await freePort();
    const [bin, ...args] = dockerfile().cmd;
    strictEqual(bin, "gunicorn");
    const inImage = args.map((a) => a.replace(/^\/app\//, `${imageDir}/`));
    return new AppServer(["-m", "gunicorn", ...inImage], { ...env, PORT: String(port) }, imageDir, port);
}

export interface Answer {
    status: number;
    headers: Headers;
    /** The body parsed as JSON (every answer of the API is). */
    body: any;
    /** Milliseconds from sending to the end of the body. */
    ms: number;
}

export interface Ask {
    /** JSON.stringify'd unless a string or Buffer, which are sent as they are. */
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
}

/** One request; a body that is not a string or Buffer is sent as JSON with Content-Type: application/json. */
export async function ask(base: string, method: string, route: string, opts: Ask = {}): Promise<Answer> {
    const raw = typeof opts.body === "string" || Buffer.isBuffer(opts.body);
    const headers = {
        ...(opts.body === undefined || raw ? {} : { "Content-Type": "application/json" }),
        ...opts.headers,
    };
    const t0 = Date.now();
    const r = await fetch(base + route, {
        method,
        headers,
        body:
            opts.body === undefined
                ? undefined
                : Buffer.isBuffer(opts.body)
                  ? new Uint8Array(opts.body)
                  : raw
                    ? (opts.body as string)
                    : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15000),
    });
    const text = await r.text();
    let body: unknown;
    try {
        body = JSON.parse(text);
    } catch {
        throw new Error(`${method} ${route}: ${r.status} with a body that is not JSON: ${text.slice(0, 300)}`);
    }
    return { status: r.status, headers: r.headers, body, ms: Date.now() - t0 };
}

/** A POST of JSON `body` with an application/json Content-Type and `headers`. */
export const post = (base: string, body: unknown, headers: Record<string, string> = {}, route = "/tasks") =>
    ask(base, "POST", route, { body, headers: { "Content-Type": "application/json", ...headers } });

/** This release's image files, a PostgreSQL 15 with the app's role, and one database per name, migrated by the Job's command. */
export class ApiFixture {
    readonly imageDir: string;
    readonly pg: PgServer;
    private readonly apps = new Set<AppServer>();

    private constructor(imageDir: string, pg: PgServer) {
        this.imageDir = imageDir;
        this.pg = pg;
    }

    static async create(): Promise<ApiFixture> {
        assertDependencies();
        const imageDir = path.join(tempDir("app-image-"), "app");
        installImage(imageDir);
        const pg = new PgServer(await freePort());
        pg.start();
        pg.sql("postgres", `CREATE ROLE "${USER}" LOGIN PASSWORD '${PASSWORD}'`);
        return new ApiFixture(imageDir, pg);
    }

    env(db: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
        return { ...podEnv(this.pg.port, db), ...extra };
    }

    /** `flask …` in the image's /app. */
    flask(db: string, ...args: string[]): Promise<Result> {
        return run(PYTHON, ["-m", "flask", ...args], { env: this.env(db), cwd: this.imageDir });
    }

    /** A new database owned by the app's role, at this release's head (`flask release-migrate`, the Job's command). */
    async database(db: string): Promise<void> {
        this.pg.sql("postgres", `CREATE DATABASE "${db}" OWNER "${USER}"`);
        const r = await this.flask(db, "release-migrate");
        if (r.status !== 0) throw new Error(`release-migrate of ${db} failed: ${r.stderr}`);
    }

    /** The image's gunicorn on `db`, started (healthz answers); stopped by teardown() if not before. */
    async app(db: string, extra: Record<string, string> = {}): Promise<AppServer> {
        const app = await gunicornFor(this.imageDir, this.env(db, extra));
        this.apps.add(app);
        await app.start();
        return app;
    }

    async stop(app: AppServer): Promise<number | null> {
        this.apps.delete(app);
        return app.stop();
    }

    async teardown(): Promise<void> {
        for (const app of this.apps) await app.stop();
        this.apps.clear();
        this.pg.remove();
        fs.rmSync(path.dirname(this.imageDir), { recursive: true, force: true });
    }
}
