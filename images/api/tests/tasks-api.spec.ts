/**
 * The API image's code (images/api) on real PostgreSQL 15: the migration Job's `flask db upgrade` and
 * `flask release-migrate` (including an image rollback onto a newer release's schema), the image's gunicorn command,
 * the API, and adopting a database the tutorial's `flask db init/migrate/upgrade` created. Runs on the Debian
 * packages the image pins (images/api/packages.txt, installed by `npm run setup`); fails, never skips, without them.
 */
import { deepStrictEqual, match, notStrictEqual, ok, strictEqual } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { installedVersions, pinnedPackages } from "../../../scripts/images/packages";
import { dockerfile } from "./api-fixture";
import {
    APP_IDENTITY,
    APP_SOURCE,
    AppServer,
    assertDependencies,
    chownTree,
    freePort,
    installImage,
    PG_BIN,
    PgServer,
    PYTHON,
    type Result,
    run,
    sleep,
    snapshot,
    tempDir,
} from "./harness";

/** The revision of images/api/migrations/versions that creates the tutorial's table. */
const INITIAL_REVISION = "b272c71feea9";
/** This release's head: the idempotency_key table (Idempotency-Key on POST /tasks). */
const HEAD_REVISION = "3007f33e312a";
/** schema_release_history's rows for this release, as recorded(). */
const RECORDED = `${HEAD_REVISION}<-${INITIAL_REVISION} ${INITIAL_REVISION}<-`;
const USER = "stateful-flask-user";
const PASSWORD = "AppPassw0rd";
const DB = "stateful-flask-db";
/** The database of the release-migrate tests: v1, then v2, then v1 again. */
const RELEASE_DB = "release-db";
const TUTORIAL_DB = "tutorial-db";
const TUTORIAL_TASK = { title: "New task", description: "Goddhi is fvcking good!!!!!" };
/** The tutorial's app, as far as its database goes (its model and Flask-Migrate). */
const TUTORIAL_APP = path.join(__dirname, "fixtures", "tutorial_app.py");
/** images/api/tests/fixtures/: the one revision a simulated second release ("v2") adds, a nullable `priority` column. */
const V2_REVISION = "c4d1e2f3a4b5";
const V2_MIGRATION = path.join(__dirname, "fixtures", `${V2_REVISION}_add_task_priority.py`);
/** A revision on top of V2_REVISION that adds a column, then fails. */
const V3_FAILING_MIGRATION = path.join(__dirname, "fixtures", "d5e6f7a8b9c0_failing_revision.py");
/** images/api/tasks_api/release_migrate.py's MIGRATION_LOCK_ID, which every release must keep. */
const MIGRATION_LOCK_ID = 0x7461736b73;
const STAMP_STEP = 'docs/app.md, "Adopting a tutorial database (one-time stamp)"';
const V1_COLUMNS = "id integer NO, title character varying 80 NO, description character varying 200 YES";
const V2_COLUMNS = `${V1_COLUMNS}, priority integer YES`;

async function http(base: string, method: string, route: string, body?: unknown, raw = false) {
    const r = await fetch(base + route, {
        method,
        headers: body === undefined || raw ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : raw ? String(body) : JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
    });
    return { status: r.status, body: await r.json() };
}

describe("tasks API (images/api) on PostgreSQL 15", function () {
    this.timeout(120000);
    const image = dockerfile();
    let imageDir: string;
    let pg: PgServer;
    let app: AppServer;
    let initial: string[];
    /** A second release: images/api plus the V2_MIGRATION revision, used by the release-migrate tests. */
    let v2Dir: string;
    let initialV2: string[];

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
    /** `flask …` in an image's /app: imageDir (this release, "v1") unless another release's copy is given. */
    const flaskIn = (dir: string, db: string, ...args: string[]) =>
        run(PYTHON, ["-m", "flask", ...args], { env: envFor(db), cwd: dir });
    const flask = (db: string, ...args: string[]) => flaskIn(imageDir, db, ...args);
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
    const taskColumns = (db: string) =>
        pg.sql(
            db,
            "SELECT string_agg(concat_ws(' ', column_name, data_type, character_maximum_length, is_nullable), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'task'",
        );
    /** schema_release_history as "revision<-down,…" lines, and the row versions (xmin) that show whether it was written. */
    const recorded = (db: string) =>
        pg.sql(
            db,
            "SELECT string_agg(revision || '<-' || array_to_string(down_revisions, ','), ' ' ORDER BY revision) FROM schema_release_history",
        );
    const recordedXmins = (db: string) =>
        pg.sql(db, "SELECT string_agg(xmin::text, ',' ORDER BY revision) FROM schema_release_history");
    const hasHistory = (db: string) => pg.sql(db, "SELECT to_regclass('schema_release_history') IS NOT NULL");
    const createDatabase = (db: string) => pg.sql("postgres", `CREATE DATABASE "${db}" OWNER "${USER}"`);

    before(async function () {
        assertDependencies();
        imageDir = path.join(tempDir("app-image-"), "app");
        installImage(imageDir);
        initial = snapshot(imageDir);
        pg = new PgServer(await freePort());
        pg.start();
        pg.sql("postgres", `CREATE ROLE "${USER}" LOGIN PASSWORD '${PASSWORD}'`);
        createDatabase(DB);
        createDatabase(RELEASE_DB);
        // A second release: this images/api plus one revision, installed like the image.
        v2Dir = path.join(tempDir("app-v2-"), "app");
        installImage(v2Dir);
        fs.copyFileSync(V2_MIGRATION, path.join(v2Dir, "migrations", "versions", path.basename(V2_MIGRATION)));
        initialV2 = snapshot(v2Dir);
    });

    after(async function () {
        await app?.stop();
        pg?.remove();
        if (imageDir) fs.rmSync(path.dirname(imageDir), { recursive: true, force: true });
        if (v2Dir) fs.rmSync(path.dirname(v2Dir), { recursive: true, force: true });
    });

    it("runs on exactly the Debian packages the image installs (images/api/packages.txt)", function () {
        const pinned = pinnedPackages(path.join(APP_SOURCE, "packages.txt"));
        strictEqual(pinned["python3-flask"], "2.2.2-3");
        strictEqual(pinned.gunicorn, "20.1.0-6+deb12u1");
        deepStrictEqual(installedVersions(Object.keys(pinned)), pinned);
    });

    it("builds from debian:bookworm-slim with Debian's Flask stack and runs gunicorn as uid 10001 with FLASK_APP set", function () {
        deepStrictEqual(image.from, ["debian:bookworm-slim"]);
        deepStrictEqual(image.copies, [
            "packages.txt -> /tmp/packages.txt",
            "gunicorn.conf.py -> /app/",
            "tasks_api/ -> /app/tasks_api/",
            "migrations/ -> /app/migrations/",
        ]);
        deepStrictEqual(image.user, ["10001:10001"]);
        deepStrictEqual(image.workdir, ["/app"]);
        deepStrictEqual(image.expose, ["5000"]);
        strictEqual(image.env.FLASK_APP, "tasks_api");
        strictEqual(image.env.PYTHONDONTWRITEBYTECODE, "1");
        deepStrictEqual(image.cmd, ["gunicorn", "--config", "/app/gunicorn.conf.py", "tasks_api:create_app()"]);
        // Every app these specs start binds the PORT it is given (api-fixture.ts gunicornFor), as the Deployment
        // gives apiPort; without PORT, the port the image EXPOSEs.
        match(
            fs.readFileSync(path.join(APP_SOURCE, "gunicorn.conf.py"), "utf8"),
            /^bind = f"0\.0\.0\.0:\{int\(os\.environ\.get\('PORT', '5000'\)\)\}"$/m,
        );
    });

    it("flask db upgrade creates the tutorial's task table, then the idempotency_key table, and records the head revision", async function () {
        const r = await flask(DB, "db", "upgrade");
        strictEqual(r.status, 0, r.stderr);
        match(
            r.stderr,
            new RegExp(
                `Running upgrade  -> ${INITIAL_REVISION}, create task table\n.*Running upgrade ${INITIAL_REVISION} -> ${HEAD_REVISION}, create idempotency_key table`,
            ),
        );
        strictEqual(taskColumns(DB), V1_COLUMNS);
        strictEqual(
            pg.sql(DB, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'task'::regclass"),
            "PRIMARY KEY (id)",
        );
        strictEqual(pg.sql(DB, "SELECT pg_get_serial_sequence('task', 'id')"), "public.task_id_seq");
        strictEqual(
            pg.sql(
                DB,
                "SELECT string_agg(concat_ws(' ', column_name, data_type, character_maximum_length, is_nullable, column_default), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'idempotency_key'",
            ),
            "key character varying 255 NO, request_hash bytea NO, task_id integer NO, created_at timestamp with time zone NO now()",
        );
        strictEqual(
            pg.sql(
                DB,
                "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'idempotency_key'",
            ),
            "CREATE UNIQUE INDEX idempotency_key_pkey ON public.idempotency_key USING btree (key); CREATE INDEX ix_idempotency_key_created_at ON public.idempotency_key USING btree (created_at)",
        );
        strictEqual(versionOf(DB), HEAD_REVISION);
    });

    it("a second flask db upgrade changes nothing", async function () {
        const table = pg.sql(DB, "SELECT 'task'::regclass::oid");
        const r = await flask(DB, "db", "upgrade");
        strictEqual(r.status, 0, r.stderr);
        ok(!r.stderr.includes("Running upgrade"), r.stderr);
        strictEqual(pg.sql(DB, "SELECT 'task'::regclass::oid"), table);
        strictEqual(versionOf(DB), HEAD_REVISION);
    });

    it("serves /healthz, creates a task with the tutorial's request and lists it", async function () {
        app = await gunicorn(DB);
        await app.start();
        // The image's user, not root (Uid: real, effective, saved, filesystem).
        if (APP_IDENTITY)
            match(fs.readFileSync(`/proc/${app.pid}/status`, "utf8"), /^Uid:\t10001\t10001\t10001\t10001$/m);
        deepStrictEqual(await http(app.url, "GET", "/healthz"), { status: 200, body: { status: "ok" } });
        deepStrictEqual(await http(app.url, "POST", "/tasks", TUTORIAL_TASK), {
            status: 201,
            body: { id: 1, ...TUTORIAL_TASK },
        });
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "No description" }), {
            status: 201,
            body: { id: 2, title: "No description", description: null },
        });
        strictEqual(
            pg.sql(DB, "SELECT id || '|' || title || '|' || coalesce(description, '<null>') FROM task ORDER BY id"),
            `1|New task|${TUTORIAL_TASK.description}\n2|No description|<null>`,
        );
        deepStrictEqual(await http(app.url, "GET", "/tasks"), {
            status: 200,
            body: {
                tasks: [
                    { id: 1, ...TUTORIAL_TASK },
                    { id: 2, title: "No description", description: null },
                ],
            },
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
            [
                { title: "ok", description: "d".repeat(201) },
                false,
                /^'description' is 201 characters; at most 200 allowed$/,
            ],
            [{ title: "ok", done: true }, false, /^unknown field\(s\): done; allowed: title, description$/],
        ];
        for (const [body, raw, message] of cases) {
            const r =
                typeof body === "string" && !raw
                    ? await postRaw(app.url, body)
                    : await http(app.url, "POST", "/tasks", body, raw);
            strictEqual(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
            match(r.body.error, message);
        }
        // The longest valid values are accepted: the limits are the columns', not off by one.
        strictEqual(
            (await http(app.url, "POST", "/tasks", { title: "t".repeat(80), description: "d".repeat(200) })).status,
            201,
        );
        strictEqual(pg.sql(DB, "DELETE FROM task WHERE id = 3 RETURNING id"), "3");
        strictEqual(pg.sql(DB, "SELECT count(*) FROM task"), "2");
    });

    it("keeps the tasks across an app restart, and stops cleanly on SIGTERM", async function () {
        strictEqual(await app.stop(), 0, app.log);
        match(app.log, /Handling signal: term/);
        app = await gunicorn(DB);
        await app.start();
        const listed = await http(app.url, "GET", "/tasks");
        deepStrictEqual(
            listed.body.tasks.map((t: { id: number; title: string }) => [t.id, t.title]),
            [
                [1, "New task"],
                [2, "No description"],
            ],
        );
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "After restart" }), {
            status: 201,
            body: { id: 4, title: "After restart", description: null },
        });
    });

    it("stays live while the database is down (503 on /tasks) and serves again once it is back", async function () {
        pg.stop();
        try {
            deepStrictEqual(await http(app.url, "GET", "/healthz"), { status: 200, body: { status: "ok" } });
            deepStrictEqual(await http(app.url, "GET", "/tasks"), {
                status: 503,
                body: { error: "database unavailable, retry later" },
            });
        } finally {
            pg.start();
        }
        // Same process: the pool's pre-ping replaces the connections the restart broke.
        const r = await http(app.url, "GET", "/tasks");
        strictEqual(r.status, 200);
        deepStrictEqual(
            r.body.tasks.map((t: { id: number }) => t.id),
            [1, 2, 4],
        );
        await app.stop();
    });

    it("answers 503, not 500, when the server behind the Service is read-only (a failover under way), and writes again once it is not", async function () {
        app = await gunicorn(DB);
        await app.start();
        strictEqual((await http(app.url, "POST", "/tasks", { title: "Before the failover" })).status, 201);
        // What a replica does to every write; the pooled connections are cut, as a demoted leader's would be.
        // (From another database: the setting applies to every new session of this one, psql's too.)
        pg.sql("postgres", `ALTER DATABASE "${DB}" SET default_transaction_read_only = on`);
        pg.sql("postgres", `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '${DB}'`);
        try {
            deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "During the failover" }), {
                status: 503,
                body: { error: "database unavailable, retry later" },
            });
            match(app.log, /database is read-only, a failover is under way/);
        } finally {
            pg.sql("postgres", `ALTER DATABASE "${DB}" RESET default_transaction_read_only`);
        }
        // No session is cut this time: the 503 dropped the pool, so the next request gets a writable connection.
        const after = await http(app.url, "POST", "/tasks", { title: "After the failover" });
        strictEqual(after.status, 201, JSON.stringify(after.body));
        strictEqual(
            pg.sql(DB, "SELECT string_agg(title, ',' ORDER BY id) FROM task WHERE title LIKE '%the failover'"),
            "Before the failover,After the failover",
        );
        await app.stop();
    });

    it("adopts a database made by the tutorial's flask db init/migrate/upgrade after a one-time stamp", async function () {
        createDatabase(TUTORIAL_DB);
        // The tutorial's steps with the tutorial's app (its model only), and a migrations directory of its own (the
        // tutorial made it inside the pod).
        const scratch = tempDir("app-tutorial-", APP_IDENTITY);
        try {
            const dir = path.join(scratch, "migrations");
            const tutorialApp = path.join(scratch, "app.py");
            fs.copyFileSync(TUTORIAL_APP, tutorialApp);
            if (APP_IDENTITY) chownTree(scratch, APP_IDENTITY);
            for (const step of [["init"], ["migrate"], ["upgrade"]]) {
                const r = await run(PYTHON, ["-m", "flask", "db", ...step, "--directory", dir], {
                    env: { ...envFor(TUTORIAL_DB), FLASK_APP: tutorialApp },
                    cwd: scratch,
                });
                strictEqual(r.status, 0, `flask db ${step}: ${r.stderr}`);
            }
        } finally {
            fs.rmSync(scratch, { recursive: true, force: true });
        }
        const tutorialRevision = versionOf(TUTORIAL_DB);
        match(tutorialRevision, /^[0-9a-f]{12}$/);
        notStrictEqual(tutorialRevision, INITIAL_REVISION);
        strictEqual(pg.tableSchema(TUTORIAL_DB, "task"), pg.tableSchema(DB, "task"));
        strictEqual(
            pg.sql(
                TUTORIAL_DB,
                "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
            ),
            "alembic_version task",
        );
        pg.sql(
            TUTORIAL_DB,
            `INSERT INTO task (title, description) VALUES ('${TUTORIAL_TASK.title}', 'made by the tutorial')`,
        );

        // What the migration Job does on such a database before the stamp: it fails, naming the revision.
        const refused = await flask(TUTORIAL_DB, "db", "upgrade");
        strictEqual(refused.status, 1);
        match(refused.stderr, new RegExp(`Can't locate revision identified by '${tutorialRevision}'`));
        strictEqual(versionOf(TUTORIAL_DB), tutorialRevision);
        // release-migrate (the Job's command) refuses it too: a foreign revision is not a rollback.
        const foreign = await flask(TUTORIAL_DB, "release-migrate");
        strictEqual(foreign.status, 1, foreign.stderr);
        match(
            foreign.stderr,
            new RegExp(
                `^Error: database is at revision ${tutorialRevision}; ${tutorialRevision} is neither in this release's migrations \\(head ${HEAD_REVISION}\\) nor recorded by any release in schema_release_history, so it is not a rollback\\.`,
                "m",
            ),
        );
        ok(foreign.stderr.includes(`stamped once: see ${STAMP_STEP}.`), foreign.stderr);
        ok(!foreign.stderr.includes("rollback;"), foreign.stderr);
        strictEqual(versionOf(TUTORIAL_DB), tutorialRevision);
        strictEqual(hasHistory(TUTORIAL_DB), "f");

        // docs/app.md, "Adopting a tutorial database".
        pg.sql(TUTORIAL_DB, "DELETE FROM alembic_version");
        const stamp = await flaskTutorialEnv(TUTORIAL_DB, "db", "stamp", INITIAL_REVISION);
        strictEqual(stamp.status, 0, stamp.stderr);
        // Only the revisions after the stamped one run: the tutorial's table stays as it is.
        const upgrade = await flask(TUTORIAL_DB, "db", "upgrade");
        strictEqual(upgrade.status, 0, upgrade.stderr);
        deepStrictEqual(upgrade.stderr.match(/Running upgrade .*/g), [
            `Running upgrade ${INITIAL_REVISION} -> ${HEAD_REVISION}, create idempotency_key table`,
        ]);
        strictEqual(versionOf(TUTORIAL_DB), HEAD_REVISION);
        const adopted = await flask(TUTORIAL_DB, "release-migrate");
        strictEqual(adopted.status, 0, adopted.stderr);
        match(
            adopted.stderr,
            new RegExp(
                `^release-migrate: database is at this release's head ${HEAD_REVISION}: nothing to upgrade$`,
                "m",
            ),
        );
        strictEqual(recorded(TUTORIAL_DB), RECORDED);

        app = await gunicorn(TUTORIAL_DB);
        await app.start();
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "Adopted" }), {
            status: 201,
            body: { id: 2, title: "Adopted", description: null },
        });
        deepStrictEqual(
            (await http(app.url, "GET", "/tasks")).body.tasks.map((t: { title: string }) => t.title),
            ["New task", "Adopted"],
        );
        await app.stop();
    });

    it("release-migrate on a database `flask db upgrade` migrated records the release, and `flask db migrate` ignores the record", async function () {
        const table = pg.sql(DB, "SELECT 'task'::regclass::oid");
        const r = await flask(DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        match(
            r.stderr,
            new RegExp(
                `^release-migrate: database is at this release's head ${HEAD_REVISION}: nothing to upgrade$`,
                "m",
            ),
        );
        match(
            r.stderr,
            new RegExp(
                `^release-migrate: at head ${HEAD_REVISION}; 2 revision\\(s\\) newly recorded in schema_release_history$`,
                "m",
            ),
        );
        strictEqual(recorded(DB), RECORDED);
        strictEqual(pg.sql(DB, "SELECT 'task'::regclass::oid"), table);

        // A developer's `flask db migrate` against such a database must not propose dropping the history table.
        const scratch = tempDir("app-dev-", APP_IDENTITY);
        try {
            const dir = path.join(scratch, "migrations");
            fs.cpSync(path.join(imageDir, "migrations"), dir, { recursive: true });
            if (APP_IDENTITY) chownTree(dir, APP_IDENTITY);
            const versions = fs.readdirSync(path.join(dir, "versions"));
            const migrate = await flask(DB, "db", "migrate", "--directory", dir, "-m", "probe");
            strictEqual(migrate.status, 0, migrate.stderr);
            match(migrate.stderr, /No changes in schema detected\./);
            ok(!migrate.stderr.includes("schema_release_history"), migrate.stderr);
            deepStrictEqual(fs.readdirSync(path.join(dir, "versions")), versions);
        } finally {
            fs.rmSync(scratch, { recursive: true, force: true });
        }
    });

    it("release-migrate migrates an empty database to this release's head and records its revisions", async function () {
        const r = await flask(RELEASE_DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        match(
            r.stderr,
            new RegExp(
                `Running upgrade  -> ${INITIAL_REVISION}, create task table\\n.*Running upgrade ${INITIAL_REVISION} -> ${HEAD_REVISION}, create idempotency_key table`,
            ),
        );
        match(
            r.stderr,
            new RegExp(
                `^release-migrate: at head ${HEAD_REVISION}; 2 revision\\(s\\) newly recorded in schema_release_history$`,
                "m",
            ),
        );
        strictEqual(taskColumns(RELEASE_DB), V1_COLUMNS);
        strictEqual(versionOf(RELEASE_DB), HEAD_REVISION);
        strictEqual(recorded(RELEASE_DB), RECORDED);
    });

    it("release-migrate run again changes nothing: no revision, no table rewritten, no history row written", async function () {
        const before = { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) };
        const r = await flask(RELEASE_DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        ok(!r.stderr.includes("Running upgrade"), r.stderr);
        match(
            r.stderr,
            new RegExp(
                `^release-migrate: database is at this release's head ${HEAD_REVISION}: nothing to upgrade$`,
                "m",
            ),
        );
        match(r.stderr, /; 0 revision\(s\) newly recorded/);
        deepStrictEqual(
            { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) },
            before,
        );
        strictEqual(versionOf(RELEASE_DB), HEAD_REVISION);
    });

    it("release-migrate of a newer release (v2) migrates further and records its whole revision graph", async function () {
        const r = await flaskIn(v2Dir, RELEASE_DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        match(r.stderr, new RegExp(`Running upgrade ${HEAD_REVISION} -> ${V2_REVISION}, add task priority`));
        ok(!r.stderr.includes(`-> ${HEAD_REVISION}`), r.stderr);
        match(r.stderr, new RegExp(`^release-migrate: at head ${V2_REVISION}; 1 revision\\(s\\) newly recorded`, "m"));
        strictEqual(taskColumns(RELEASE_DB), V2_COLUMNS);
        strictEqual(versionOf(RELEASE_DB), V2_REVISION);
        strictEqual(recorded(RELEASE_DB), `${RECORDED} ${V2_REVISION}<-${HEAD_REVISION}`);
        pg.sql(RELEASE_DB, "INSERT INTO task (title, priority) VALUES ('made by v2', 1)");
    });

    it("after a rollback to v1, v1's release-migrate succeeds, leaves v2's schema as it is, and v1 serves on it", async function () {
        // The problem it solves: v1's `flask db upgrade` cannot place v2's revision.
        const plain = await flask(RELEASE_DB, "db", "upgrade");
        strictEqual(plain.status, 1);
        match(plain.stderr, new RegExp(`Can't locate revision identified by '${V2_REVISION}'`));

        const before = { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) };
        const r = await flask(RELEASE_DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        strictEqual(
            r.stderr.trim(),
            `release-migrate: database is at ${V2_REVISION}, newer than this release's head ${HEAD_REVISION}: a rollback; the schema is left as it is`,
        );
        strictEqual(versionOf(RELEASE_DB), V2_REVISION);
        strictEqual(taskColumns(RELEASE_DB), V2_COLUMNS);
        deepStrictEqual(
            { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) },
            before,
        );

        // v1's API on v2's schema (expand/contract: v2 only added a nullable column).
        app = await gunicorn(RELEASE_DB);
        await app.start();
        deepStrictEqual(await http(app.url, "POST", "/tasks", { title: "made by v1" }), {
            status: 201,
            body: { id: 2, title: "made by v1", description: null },
        });
        deepStrictEqual(await http(app.url, "GET", "/tasks"), {
            status: 200,
            body: {
                tasks: [
                    { id: 1, title: "made by v2", description: null },
                    { id: 2, title: "made by v1", description: null },
                ],
            },
        });
        strictEqual(
            pg.sql(
                RELEASE_DB,
                "SELECT string_agg(id || ':' || coalesce(priority::text, '<null>'), ' ' ORDER BY id) FROM task",
            ),
            "1:1 2:<null>",
        );
        await app.stop();
    });

    it("release-migrate of v2 again after the rollback is a no-op", async function () {
        const before = { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) };
        const r = await flaskIn(v2Dir, RELEASE_DB, "release-migrate");
        strictEqual(r.status, 0, r.stderr);
        ok(!r.stderr.includes("Running upgrade"), r.stderr);
        match(
            r.stderr,
            new RegExp(`^release-migrate: database is at this release's head ${V2_REVISION}: nothing to upgrade$`, "m"),
        );
        deepStrictEqual(
            { table: pg.sql(RELEASE_DB, "SELECT 'task'::regclass::oid"), xmins: recordedXmins(RELEASE_DB) },
            before,
        );
        strictEqual(versionOf(RELEASE_DB), V2_REVISION);
    });

    it("the previous release (head b272c71feea9) rolls back onto this release's schema: its release-migrate leaves idempotency_key and the task table as they are", async function () {
        const PREVIOUS_DB = "previous-db";
        createDatabase(PREVIOUS_DB);
        strictEqual((await flask(PREVIOUS_DB, "release-migrate")).status, 0);
        // The previous release's migrations: this release's without its revision.
        const v0Dir = path.join(tempDir("app-v0-"), "app");
        try {
            fs.cpSync(imageDir, v0Dir, { recursive: true });
            fs.rmSync(path.join(v0Dir, "migrations", "versions", `${HEAD_REVISION}_create_idempotency_key_table.py`));
            const before = { xmins: recordedXmins(PREVIOUS_DB), schema: pg.tableSchema(PREVIOUS_DB, "task") };
            const r = await flaskIn(v0Dir, PREVIOUS_DB, "release-migrate");
            strictEqual(r.status, 0, r.stderr);
            strictEqual(
                r.stderr.trim(),
                `release-migrate: database is at ${HEAD_REVISION}, newer than this release's head ${INITIAL_REVISION}: a rollback; the schema is left as it is`,
            );
            deepStrictEqual({ xmins: recordedXmins(PREVIOUS_DB), schema: pg.tableSchema(PREVIOUS_DB, "task") }, before);
            // The previous release's code reads and writes `task` alone, whose definition this release does not touch.
            strictEqual(pg.tableSchema(PREVIOUS_DB, "task"), pg.tableSchema(TUTORIAL_DB, "task"));
            strictEqual(pg.sql(PREVIOUS_DB, "SELECT to_regclass('idempotency_key') IS NOT NULL"), "t");
            strictEqual(versionOf(PREVIOUS_DB), HEAD_REVISION);
        } finally {
            fs.rmSync(path.dirname(v0Dir), { recursive: true, force: true });
        }
    });

    it("release-migrate of a release whose migration fails leaves nothing of it, history included", async function () {
        const v3Dir = path.join(tempDir("app-v3-"), "app");
        try {
            fs.cpSync(v2Dir, v3Dir, { recursive: true });
            fs.copyFileSync(
                V3_FAILING_MIGRATION,
                path.join(v3Dir, "migrations", "versions", path.basename(V3_FAILING_MIGRATION)),
            );
            const before = recordedXmins(RELEASE_DB);
            const r = await flaskIn(v3Dir, RELEASE_DB, "release-migrate");
            strictEqual(r.status, 1, r.stderr);
            match(r.stderr, new RegExp(`Running upgrade ${V2_REVISION} -> d5e6f7a8b9c0, failing revision`));
            match(r.stderr, /division by zero/);
            strictEqual(taskColumns(RELEASE_DB), V2_COLUMNS);
            strictEqual(versionOf(RELEASE_DB), V2_REVISION);
            strictEqual(recordedXmins(RELEASE_DB), before);
            strictEqual(recorded(RELEASE_DB), `${RECORDED} ${V2_REVISION}<-${HEAD_REVISION}`);
        } finally {
            fs.rmSync(path.dirname(v3Dir), { recursive: true, force: true });
        }
    });

    it("release-migrate fails on a revision no release recorded, naming the stamp step, and changes nothing", async function () {
        const FOREIGN_DB = "foreign-db";
        createDatabase(FOREIGN_DB);
        strictEqual((await flask(FOREIGN_DB, "release-migrate")).status, 0);
        // What a tutorial's in-pod `flask db migrate` leaves behind: a random id no image ships.
        pg.sql(FOREIGN_DB, "UPDATE alembic_version SET version_num = '3f2c9a1d7e4b'");
        const xmins = recordedXmins(FOREIGN_DB);
        for (const dir of [imageDir, v2Dir]) {
            const r = await flaskIn(dir, FOREIGN_DB, "release-migrate");
            strictEqual(r.status, 1, r.stderr);
            match(
                r.stderr,
                /^Error: database is at revision 3f2c9a1d7e4b; 3f2c9a1d7e4b is neither in this release's migrations \(head [0-9a-f]{12}\) nor recorded by any release in schema_release_history, so it is not a rollback\./m,
            );
            ok(r.stderr.includes(`stamped once: see ${STAMP_STEP}.`), r.stderr);
        }
        strictEqual(versionOf(FOREIGN_DB), "3f2c9a1d7e4b");
        strictEqual(recordedXmins(FOREIGN_DB), xmins);
        strictEqual(taskColumns(FOREIGN_DB), V1_COLUMNS);
    });

    it("release-migrate fails on a recorded revision that does not descend from this release's head", async function () {
        const SIBLING_DB = "sibling-db";
        createDatabase(SIBLING_DB);
        strictEqual((await flask(SIBLING_DB, "release-migrate")).status, 0);
        // Recorded, so not foreign, but on a line of its own: nothing says v1's schema is there.
        pg.sql(
            SIBLING_DB,
            "INSERT INTO schema_release_history (revision, down_revisions) VALUES ('0123456789ab', '{}')",
        );
        pg.sql(SIBLING_DB, "UPDATE alembic_version SET version_num = '0123456789ab'");
        const r = await flask(SIBLING_DB, "release-migrate");
        strictEqual(r.status, 1, r.stderr);
        match(
            r.stderr,
            new RegExp(
                `^Error: database is at revision 0123456789ab, recorded in schema_release_history but not descended from this release's head ${HEAD_REVISION}: not a rollback`,
                "m",
            ),
        );
        ok(r.stderr.includes(`see ${STAMP_STEP}.`), r.stderr);
        strictEqual(versionOf(SIBLING_DB), "0123456789ab");
    });

    it("release-migrate waits on env.py's advisory lock, so two Jobs at once apply the revisions once", async function () {
        const LOCK_DB = "lock-db";
        createDatabase(LOCK_DB);
        const advisory = (granted: boolean) =>
            Number(
                pg.sql(
                    "postgres",
                    `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = ${granted} AND ((classid::bigint << 32) | objid::bigint) = ${MIGRATION_LOCK_ID} AND database = (SELECT oid FROM pg_database WHERE datname = '${LOCK_DB}')`,
                ),
            );
        const waitFor = async (what: string, done: () => boolean) => {
            for (const deadline = Date.now() + 30000; !done(); await sleep(100))
                if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        };
        // Another migration holding the lock (what env.py takes), in a session of its own.
        const holder = run(
            path.join(PG_BIN, "psql"),
            [
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                String(pg.port),
                "-U",
                USER,
                "-d",
                LOCK_DB,
                "-c",
                `SELECT pg_advisory_lock(${MIGRATION_LOCK_ID}); SELECT pg_sleep(60)`,
            ],
            {
                env: { PATH: "/usr/bin:/bin", PGPASSWORD: PASSWORD, PGAPPNAME: "lock-holder" },
                cwd: "/",
                timeoutMs: 90000,
            },
        );
        let jobs: Promise<Result>[] = [];
        try {
            await waitFor("the lock holder", () => advisory(true) === 1);
            jobs = [flask(LOCK_DB, "release-migrate"), flask(LOCK_DB, "release-migrate")];
            await waitFor("both release-migrate to wait on the lock", () => advisory(false) === 2);
            // Both wait before reading alembic_version: nothing exists yet.
            strictEqual(
                pg.sql(LOCK_DB, "SELECT to_regclass('alembic_version') IS NULL AND to_regclass('task') IS NULL"),
                "t",
            );
        } finally {
            strictEqual(
                pg.sql(
                    "postgres",
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lock-holder'",
                ),
                "1",
            );
            await holder;
        }
        const results = await Promise.all(jobs);
        for (const r of results) strictEqual(r.status, 0, r.stderr);
        const upgraded = results.filter((r) => r.stderr.includes(`Running upgrade  -> ${INITIAL_REVISION}`));
        const waited = results.filter((r) =>
            new RegExp(
                `^release-migrate: database is at this release's head ${HEAD_REVISION}: nothing to upgrade$`,
                "m",
            ).test(r.stderr),
        );
        deepStrictEqual([upgraded.length, waited.length], [1, 1], results.map((r) => r.stderr).join("\n----\n"));
        strictEqual(versionOf(LOCK_DB), HEAD_REVISION);
        strictEqual(recorded(LOCK_DB), RECORDED);
    });

    it("never wrote to its working directory (the image's /app)", function () {
        deepStrictEqual(snapshot(imageDir), initial);
        deepStrictEqual(snapshot(v2Dir), initialV2);
        if (APP_IDENTITY) strictEqual(fs.statSync(imageDir).uid, 0);
    });
});

/** A JSON-typed request whose body is not valid JSON. */
async function postRaw(base: string, body: string) {
    const r = await fetch(`${base}/tasks`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
        signal: AbortSignal.timeout(10000),
    });
    return { status: r.status, body: await r.json() };
}
