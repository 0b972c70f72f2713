/**
 * app/ on real PostgreSQL 15: the migration Job's `flask db upgrade`, the image's gunicorn command, the API, and
 * adopting a database the tutorial's `flask db init/migrate/upgrade` created. Needs Debian's packages
 * (tests/app/ensure-python.sh); fails, never skips, without them.
 */
import { deepStrictEqual, match, notStrictEqual, ok, strictEqual } from "assert";
import * as fs from "fs";
import * as path from "path";
import {
    APP_IDENTITY,
    APP_SOURCE,
    AppServer,
    assertDependencies,
    freePort,
    installImage,
    PgServer,
    pinnedAndInstalled,
    PYTHON,
    run,
    snapshot,
    tempDir,
} from "./harness";

/** The revision of app/migrations/versions that creates the tutorial's table. */
const INITIAL_REVISION = "b272c71feea9";
const USER = "stateful-flask-user";
const PASSWORD = "AppPassw0rd";
const DB = "stateful-flask-db";
const TUTORIAL_DB = "tutorial-db";
const TUTORIAL_TASK = { title: "New task", description: "Goddhi is fvcking good!!!!!" };

/** ENV, CMD and the other instructions of app/Dockerfile (continuation lines joined). */
function dockerfile() {
    const lines = fs
        .readFileSync(path.join(APP_SOURCE, "Dockerfile"), "utf8")
        .replace(/\\\n/g, " ")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"));
    const instruction = (name: string) => lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
    const env: Record<string, string> = {};
    for (const l of instruction("ENV")) for (const [, k, v] of l.matchAll(/(\w+)=(\S+)/g)) env[k] = v;
    return { from: instruction("FROM"), user: instruction("USER"), workdir: instruction("WORKDIR"), expose: instruction("EXPOSE"), cmd: JSON.parse(instruction("CMD")[0] ?? "[]") as string[], env };
}

async function http(base: string, method: string, route: string, body?: unknown, raw = false) {
    const r = await fetch(base + route, {
        method,
        headers: body === undefined || raw ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : raw ? String(body) : JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
    });
    return { status: r.status, body: await r.json() };
}

describe("tasks API (app/) on PostgreSQL 15", function () {
    this.timeout(120000);
    const image = dockerfile();
    let imageDir: string;
    let pg: PgServer;
    let app: AppServer;
    let initial: string[];

    const url = (db: string) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${pg.port}/${db}`;
    // What the pod gets: the Dockerfile's ENV plus the Secret's keys (components/tasks-api.ts).
    const envFor = (db: string): NodeJS.ProcessEnv => ({
        PATH: "/usr/bin:/bin",
        LANG: "C.UTF-8",
        HOME: "/nonexistent",
        ...image.env,
        DATABASE_URL: url(db),
        POSTGRES_HOST: "127.0.0.1",
        POSTGRES_PORT: String(pg.port),
        POSTGRES_DB: db,
        POSTGRES_USER: USER,
        POSTGRES_PASSWORD: PASSWORD,
    });
    const flask = (db: string, ...args: string[]) => run(PYTHON, ["-m", "flask", ...args], { env: envFor(db), cwd: imageDir });
    /** Only the tutorial's POSTGRES_* variables, no DATABASE_URL. */
    const flaskTutorialEnv = (db: string, ...args: string[]) =>
        run(PYTHON, ["-m", "flask", ...args], { env: { ...envFor(db), DATABASE_URL: undefined }, cwd: imageDir });
    const gunicorn = async (db: string) => {
        await app?.stop(); // one left running by a failed test
        const port = await freePort();
        const [bin, ...args] = image.cmd;
        strictEqual(bin, "gunicorn");
        const inImage = args.map((a) => a.replace(/^\/app\//, `${imageDir}/`));
        return new AppServer(["-m", "gunicorn", ...inImage, "--bind", `127.0.0.1:${port}`], envFor(db), imageDir, port);
    };
    const versionOf = (db: string) => pg.sql(db, "SELECT version_num FROM alembic_version");

    before(async function () {
        assertDependencies();
        imageDir = path.join(tempDir("app-image-"), "app");
        installImage(imageDir);
        initial = snapshot(imageDir);
        pg = new PgServer(await freePort());
        pg.start();
        pg.sql("postgres", `CREATE ROLE "${USER}" LOGIN PASSWORD '${PASSWORD}'`);
        pg.sql("postgres", `CREATE DATABASE "${DB}" OWNER "${USER}"`);
    });

    after(async function () {
        await app?.stop();
        pg?.remove();
        if (imageDir) fs.rmSync(path.dirname(imageDir), { recursive: true, force: true });
    });

    it("pins in requirements.txt exactly the versions these tests run", function () {
        const { pinned, installed } = pinnedAndInstalled();
        strictEqual(pinned["Flask"], "2.2.2");
        strictEqual(pinned["gunicorn"], "20.1.0");
        deepStrictEqual(installed, pinned);
    });

    it("builds from a pinned python:3.11 slim base and runs gunicorn as uid 10001 with FLASK_APP set", function () {
        match(image.from[0], /^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$/);
        deepStrictEqual(image.user, ["10001:10001"]);
        deepStrictEqual(image.workdir, ["/app"]);
        deepStrictEqual(image.expose, ["5000"]);
        strictEqual(image.env.FLASK_APP, "tasks_api");
        strictEqual(image.env.PYTHONDONTWRITEBYTECODE, "1");
        deepStrictEqual(image.cmd, ["gunicorn", "--config", "/app/gunicorn.conf.py", "tasks_api:create_app()"]);
        match(fs.readFileSync(path.join(APP_SOURCE, "gunicorn.conf.py"), "utf8"), /^bind = "0\.0\.0\.0:5000"$/m);
    });

    it("flask db upgrade creates the tutorial's task table and records the initial revision", async function () {
        const r = await flask(DB, "db", "upgrade");
        strictEqual(r.status, 0, r.stderr);
        match(r.stderr, new RegExp(`Running upgrade  -> ${INITIAL_REVISION}, create task table`));
        strictEqual(
            pg.sql(DB, "SELECT string_agg(concat_ws(' ', column_name, data_type, character_maximum_length, is_nullable), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'task'"),
            "id integer NO, title character varying 80 NO, description character varying 200 YES",
        );
        strictEqual(pg.sql(DB, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'task'::regclass"), "PRIMARY KEY (id)");
        strictEqual(pg.sql(DB, "SELECT pg_get_serial_sequence('task', 'id')"), "public.task_id_seq");
        strictEqual(versionOf(DB), INITIAL_REVISION);
    });

    it("a second flask db upgrade changes nothing", async function () {
        const table = pg.sql(DB, "SELECT 'task'::regclass::oid");
        const r = await flask(DB, "db", "upgrade");
        strictEqual(r.status, 0, r.stderr);
        ok(!r.stderr.includes("Running upgrade"), r.stderr);
        strictEqual(pg.sql(DB, "SELECT 'task'::regclass::oid"), table);
        strictEqual(versionOf(DB), INITIAL_REVISION);
    });

    it("serves /healthz, creates a task with the tutorial's request and lists it", async function () {
        app = await gunicorn(DB);
        await app.start();
        // The image's user, not root (Uid: real, effective, saved, filesystem).
        if (APP_IDENTITY) match(fs.readFileSync(`/proc/${app.pid}/status`, "utf8"), /^Uid:\t10001\t10001\t10001\t10001$/m);
        deepStrictEqual(await http(app.url, "GET", "/healthz"), { status: 200, body: { status: "ok" } });
        deepStrictEqual(await http(app.url, "POST", "/tasks", TUTORIAL_TASK), { status: 201, body: { id: 1, ...TUTORIAL_TASK } });
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "No description" }), { status: 201, body: { id: 2, title: "No description", description: null } });
        strictEqual(pg.sql(DB, "SELECT id || '|' || title || '|' || coalesce(description, '<null>') FROM task ORDER BY id"), `1|New task|${TUTORIAL_TASK.description}\n2|No description|<null>`);
        deepStrictEqual(await http(app.url, "GET", "/tasks"), {
            status: 200,
            body: { tasks: [{ id: 1, ...TUTORIAL_TASK }, { id: 2, title: "No description", description: null }] },
        });
    });

    it("rejects bad input with 400 and a message naming the problem, storing nothing", async function () {
        const cases: [unknown, boolean, RegExp][] = [
            ["title=New task", true, /^request body must be a JSON object with Content-Type: application\/json/],
            ['{"title": ', false, /^request body must be a JSON object/],
            [[TUTORIAL_TASK], false, /^request body must be a JSON object/],
            [{ description: "no title" }, false, /^'title' is required and must be a non-empty string$/],
            [{ title: "   " }, false, /^'title' is required and must be a non-empty string$/],
            [{ title: 42 }, false, /^'title' is required and must be a non-empty string$/],
            [{ title: "x".repeat(81) }, false, /^'title' is 81 characters; at most 80 allowed$/],
            [{ title: "ok", description: 7 }, false, /^'description' must be a string or null$/],
            [{ title: "ok", description: "d".repeat(201) }, false, /^'description' is 201 characters; at most 200 allowed$/],
            [{ title: "ok", done: true }, false, /^unknown field\(s\): done; allowed: title, description$/],
        ];
        for (const [body, raw, message] of cases) {
            const r = typeof body === "string" && !raw ? await postRaw(app.url, body) : await http(app.url, "POST", "/tasks", body, raw);
            strictEqual(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
            match(r.body.error, message);
        }
        // The longest valid values are accepted: the limits are the columns', not off by one.
        strictEqual((await http(app.url, "POST", "/tasks", { title: "t".repeat(80), description: "d".repeat(200) })).status, 201);
        strictEqual(pg.sql(DB, "DELETE FROM task WHERE id = 3 RETURNING id"), "3");
        strictEqual(pg.sql(DB, "SELECT count(*) FROM task"), "2");
    });

    it("keeps the tasks across an app restart, and stops cleanly on SIGTERM", async function () {
        strictEqual(await app.stop(), 0, app.log);
        match(app.log, /Handling signal: term/);
        app = await gunicorn(DB);
        await app.start();
        const listed = await http(app.url, "GET", "/tasks");
        deepStrictEqual(listed.body.tasks.map((t: { id: number; title: string }) => [t.id, t.title]), [[1, "New task"], [2, "No description"]]);
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "After restart" }), { status: 201, body: { id: 4, title: "After restart", description: null } });
    });

    it("stays live while the database is down (503 on /tasks) and serves again once it is back", async function () {
        pg.stop();
        try {
            deepStrictEqual(await http(app.url, "GET", "/healthz"), { status: 200, body: { status: "ok" } });
            deepStrictEqual(await http(app.url, "GET", "/tasks"), { status: 503, body: { error: "database unavailable, retry later" } });
        } finally {
            pg.start();
        }
        // Same process: the pool's pre-ping replaces the connections the restart broke.
        const r = await http(app.url, "GET", "/tasks");
        strictEqual(r.status, 200);
        deepStrictEqual(r.body.tasks.map((t: { id: number }) => t.id), [1, 2, 4]);
        await app.stop();
    });

    it("adopts a database made by the tutorial's flask db init/migrate/upgrade after a one-time stamp", async function () {
        pg.sql("postgres", `CREATE DATABASE "${TUTORIAL_DB}" OWNER "${USER}"`);
        // The tutorial's steps, with a migrations directory of its own (the tutorial made it inside the pod).
        const scratch = tempDir("app-tutorial-", APP_IDENTITY);
        try {
            const dir = path.join(scratch, "migrations");
            for (const step of [["init"], ["migrate"], ["upgrade"]]) {
                const r = await flask(TUTORIAL_DB, "db", ...step, "--directory", dir);
                strictEqual(r.status, 0, `flask db ${step}: ${r.stderr}`);
            }
        } finally {
            fs.rmSync(scratch, { recursive: true, force: true });
        }
        const tutorialRevision = versionOf(TUTORIAL_DB);
        match(tutorialRevision, /^[0-9a-f]{12}$/);
        notStrictEqual(tutorialRevision, INITIAL_REVISION);
        strictEqual(pg.tableSchema(TUTORIAL_DB, "task"), pg.tableSchema(DB, "task"));
        pg.sql(TUTORIAL_DB, `INSERT INTO task (title, description) VALUES ('${TUTORIAL_TASK.title}', 'made by the tutorial')`);

        // What the migration Job does on such a database before the stamp: it fails, naming the revision.
        const refused = await flask(TUTORIAL_DB, "db", "upgrade");
        strictEqual(refused.status, 1);
        match(refused.stderr, new RegExp(`Can't locate revision identified by '${tutorialRevision}'`));
        strictEqual(versionOf(TUTORIAL_DB), tutorialRevision);

        // docs/app.md, "Adopting a tutorial database".
        pg.sql(TUTORIAL_DB, "DELETE FROM alembic_version");
        const stamp = await flaskTutorialEnv(TUTORIAL_DB, "db", "stamp", INITIAL_REVISION);
        strictEqual(stamp.status, 0, stamp.stderr);
        const upgrade = await flask(TUTORIAL_DB, "db", "upgrade");
        strictEqual(upgrade.status, 0, upgrade.stderr);
        ok(!upgrade.stderr.includes("Running upgrade"), upgrade.stderr);
        strictEqual(versionOf(TUTORIAL_DB), INITIAL_REVISION);

        app = await gunicorn(TUTORIAL_DB);
        await app.start();
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "Adopted" }), { status: 201, body: { id: 2, title: "Adopted", description: null } });
        deepStrictEqual((await http(app.url, "GET", "/tasks")).body.tasks.map((t: { title: string }) => t.title), ["New task", "Adopted"]);
        await app.stop();
    });

    it("never wrote to its working directory (the image's /app)", function () {
        deepStrictEqual(snapshot(imageDir), initial);
        if (APP_IDENTITY) strictEqual(fs.statSync(imageDir).uid, 0);
    });
});

/** A JSON-typed request whose body is not valid JSON. */
async function postRaw(base: string, body: string) {
    const r = await fetch(`${base}/tasks`, { method: "POST", headers: { "Content-Type": "application/json" }, body, signal: AbortSignal.timeout(10000) });
    return { status: r.status, body: await r.json() };
}
