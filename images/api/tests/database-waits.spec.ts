/**
 * Every wait of the API on PostgreSQL is bounded, on real processes: a server that stops answering (SIGSTOP, or a
 * proxy that stops forwarding: the kernel still acknowledges every packet), a host whose packets are dropped
 * (iptables, root only), and a statement the server is slow to finish or that waits on a lock. Each answers a
 * retryable 503 within its bound, /healthz stays up, and the next request after the fault reaches a live server.
 * Migrations get none of the API's statement timeouts.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Answer, ApiFixture, ask, post } from "./api-fixture";
import { type AppServer, PG_BIN, PYTHON, run, sleep, TcpProxy, tempDir } from "./harness";

const DB = "waits-db";
/** DB_QUERY_TIMEOUT's default, seconds. */
const QUERY_TIMEOUT = 3;
/** database.transport_parameters' tcp_user_timeout, ms. */
const TCP_USER_TIMEOUT_MS = 5000;
const UNAVAILABLE = { status: 503, body: { error: "database unavailable, retry later" }, retryAfter: "5" };
const seen = (r: Answer) => ({ status: r.status, body: r.body, retryAfter: r.headers.get("retry-after") });

describe("tasks API (images/api): bounded waits on a hung, vanished or slow database", function () {
    this.timeout(180000);
    let fx: ApiFixture;
    let app: AppServer;
    const sql = (q: string) => fx.pg.sql(DB, q);
    /** The request's 503 came after about `seconds` (it waited for the bound, and no longer). */
    const within = (r: Answer, seconds: number) =>
        ok(
            r.ms >= seconds * 1000 - 300 && r.ms < seconds * 1000 + 2500,
            `answered after ${r.ms} ms, bound ${seconds} s`,
        );

    before(async function () {
        fx = await ApiFixture.create();
        await fx.database(DB);
        app = await fx.app(DB);
    });

    after(async function () {
        await fx?.teardown();
    });

    it("answers 503 within DB_QUERY_TIMEOUT while PostgreSQL is SIGSTOPped (pooled and new connections), stays live, and writes right after SIGCONT", async function () {
        for (let i = 0; i < 4; i++) strictEqual((await post(app.url, { title: `before ${i}` })).status, 201);
        fx.pg.freeze();
        let write: Answer, read: Answer, one: Answer, health: Answer;
        try {
            // A pooled connection: the statement is sent, no answer comes.
            write = await post(app.url, { title: "while stopped" });
            // The 503 dropped the pool: these dial anew, and the postmaster never answers the startup packet.
            read = await ask(app.url, "GET", "/tasks");
            one = await ask(app.url, "GET", "/tasks/1");
            health = await ask(app.url, "GET", "/healthz");
        } finally {
            fx.pg.thaw();
        }
        for (const r of [write, read, one]) {
            deepStrictEqual(seen(r), UNAVAILABLE);
            within(r, QUERY_TIMEOUT);
        }
        deepStrictEqual({ status: health.status, body: health.body }, { status: 200, body: { status: "ok" } });
        ok(health.ms < 1000, `healthz took ${health.ms} ms`);
        // One line per request: the pooled connection's statement, then two connection attempts (the request's
        // deadline is earlier than DB_CONNECT_TIMEOUT's, so it names the request's).
        strictEqual(
            app.log.match(/database unavailable: no answer from the database within DB_QUERY_TIMEOUT \(3 s\)$/gm)
                ?.length,
            3,
            app.log,
        );

        const after = await post(app.url, { title: "after SIGCONT" });
        strictEqual(after.status, 201, JSON.stringify(after.body));
        ok(after.ms < 2000, `first write after SIGCONT took ${after.ms} ms`);
    });

    it("answers 503 within DB_QUERY_TIMEOUT when the server behind its connections hangs, and the next request reaches the live server", async function () {
        // The proxy plays the read-write Service: its open connections hang (a leader frozen with its node's kernel
        // still answering TCP), new ones reach a live server (the new leader).
        const proxy = new TcpProxy(fx.pg.port);
        await proxy.start();
        const viaProxy = await fx.app(DB, {
            DATABASE_URL: `postgresql://stateful-flask-user:AppPassw0rd@127.0.0.1:${proxy.port}/${DB}`,
        });
        try {
            // Busy enough that both workers hold pooled connections.
            await Promise.all(Array.from({ length: 16 }, (_, i) => post(viaProxy.url, { title: `via proxy ${i}` })));
            ok(proxy.connections[0] >= 2, `connections through the proxy: ${proxy.connections}`);
            proxy.hangExisting();
            const hung = await post(viaProxy.url, { title: "on a hung connection" });
            deepStrictEqual(seen(hung), UNAVAILABLE);
            within(hung, QUERY_TIMEOUT);
            // This worker dropped its pool; whichever worker answers next, a hung connection costs one more
            // deadline at most, then requests go to the live server.
            const next: Answer[] = [];
            for (let i = 0; i < 6; i++) next.push(await post(viaProxy.url, { title: `after the hang ${i}` }));
            const failed = next.filter((r) => r.status !== 201);
            ok(failed.length <= 1 && failed.every((r) => r.status === 503), JSON.stringify(next.map(seen)));
            ok(
                next
                    .slice(failed.length ? next.indexOf(failed[0]) + 1 : 0)
                    .every((r) => r.status === 201 && r.ms < 1500),
                JSON.stringify(next.map((r) => [r.status, r.ms])),
            );
            strictEqual(
                sql("SELECT count(*) FROM task WHERE title LIKE 'after the hang %'"),
                String(6 - failed.length),
            );
        } finally {
            await fx.stop(viaProxy);
            await proxy.stop();
        }
    });

    it("lets the server cancel a slow statement (statement_timeout) or a lock wait (lock_timeout): 503, nothing written, the connection kept", async function () {
        const backends = () =>
            sql(
                "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'stateful-flask-user'",
            );
        // statement_timeout is DB_QUERY_TIMEOUT - 1 s, lock_timeout half of that: 2 s and 1 s.
        sql(
            `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.title = 'slow' THEN PERFORM pg_sleep(10); END IF; RETURN NEW; END $$`,
        );
        sql("CREATE TRIGGER slow BEFORE INSERT ON task FOR EACH ROW EXECUTE FUNCTION slow()");
        // One worker, requests one at a time: one pooled connection, whose backend must survive both timeouts.
        // (The other app's idle sessions go; its pool replaces them when it next needs one.)
        sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'stateful-flask-user'",
        );
        const single = await fx.app(DB, { WEB_CONCURRENCY: "1" });
        try {
            for (let i = 0; i < 4; i++) strictEqual((await post(single.url, { title: "warm" })).status, 201);
            const pids = backends();
            strictEqual(pids.split(",").length, 1, pids);
            const slow = await post(single.url, { title: "slow" });
            deepStrictEqual(seen(slow), UNAVAILABLE);
            within(slow, 2);
            match(single.log, /database unavailable: canceling statement due to statement timeout/);

            const locked = locking(fx, DB, 6);
            await sleep(500);
            const waited = await post(single.url, { title: "behind a lock" });
            await locked;
            deepStrictEqual(seen(waited), UNAVAILABLE);
            within(waited, 1);
            match(single.log, /database unavailable: canceling statement due to lock timeout/);
            strictEqual(sql("SELECT count(*) FROM task WHERE title IN ('slow', 'behind a lock')"), "0");
            // The server cancelled; the connections stayed (no new backend).
            strictEqual(backends(), pids);
            strictEqual((await post(single.url, { title: "after the timeouts" })).status, 201);
            strictEqual(backends(), pids);
        } finally {
            await fx.stop(single);
            sql("DROP TRIGGER slow ON task; DROP FUNCTION slow()");
        }
    });

    it("keeps TCP keepalives on its pooled connections and, with packets to the server dropped, answers 503 within DB_QUERY_TIMEOUT (or tcp_user_timeout when that bound is longer), then writes once packets flow", async function () {
        if (process.getuid?.() !== 0)
            throw new Error("this case drops packets with iptables on loopback: run the spec as root");
        const long = await fx.app(DB, { DB_QUERY_TIMEOUT: "30" });
        const rule = (op: "-I" | "-D", dir: "--dport" | "--sport") =>
            execFileSync("iptables", [
                op,
                "INPUT",
                "-i",
                "lo",
                "-p",
                "tcp",
                dir,
                String(fx.pg.port),
                "-m",
                "comment",
                "--comment",
                `tasks-api-spec-${process.pid}`,
                "-j",
                "DROP",
            ]);
        let dropping = false;
        const drop = (on: boolean) => {
            for (const dir of ["--dport", "--sport"] as const) rule(on ? "-I" : "-D", dir);
            dropping = on;
        };
        process.once("exit", () => dropping && drop(false));
        try {
            for (const a of [app, long])
                for (let i = 0; i < 4; i++) strictEqual((await post(a.url, { title: "warm" })).status, 201);
            // libpq's keepalives on the app's sockets (ss shows the kernel's keepalive timer on idle connections).
            const ss = execFileSync("ss", ["-tnoH", "state", "established", `( dport = :${fx.pg.port} )`], {
                encoding: "utf8",
            });
            const lines = ss.trim().split("\n").filter(Boolean);
            ok(lines.length >= 2 && lines.every((l) => /timer:\(keepalive,/.test(l)), ss);

            drop(true);
            const [short, longer] = await Promise.all([
                post(app.url, { title: "dropped 3" }),
                post(long.url, { title: "dropped 30" }),
            ]);
            deepStrictEqual(seen(short), UNAVAILABLE);
            within(short, QUERY_TIMEOUT);
            // DB_QUERY_TIMEOUT 30 s: the kernel gives up first, after tcp_user_timeout without an acknowledgement.
            deepStrictEqual(seen(longer), UNAVAILABLE);
            within(longer, TCP_USER_TIMEOUT_MS / 1000);
            // New connections: the SYN is dropped; the deadline (or connect_timeout) ends the wait.
            const dialing = await post(app.url, { title: "dialing" });
            deepStrictEqual(seen(dialing), UNAVAILABLE);
            within(dialing, QUERY_TIMEOUT);
        } finally {
            if (dropping) drop(false);
        }
        for (const a of [app, long]) {
            const r = await post(a.url, { title: "after the drop" });
            strictEqual(r.status, 201, JSON.stringify(r.body));
            ok(r.ms < 2000, `first write after the drop took ${r.ms} ms`);
        }
        strictEqual(sql("SELECT count(*) FROM task WHERE title LIKE 'dropped%' OR title = 'dialing'"), "0");
        await fx.stop(long);
    });

    it("never acknowledges a write whose commit waits for an absent synchronous standby: 503 at the deadline, not a 201 when statement_timeout fires", async function () {
        // statement_timeout (2 s) is shorter than the deadline (3 s). Were it armed during the commit's wait for
        // the standby, its cancel would end the wait with only a WARNING ("canceling wait for synchronous
        // replication"), the INSERT would report success and the API would answer 201 for a row no standby has:
        // lost at the next failover. PostgreSQL disarms it before committing; this holds us to that.
        const title = "waits for a standby that is not there";
        fx.pg.sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'absent'");
        fx.pg.sql("postgres", "SELECT pg_reload_conf()");
        try {
            await sleep(500);
            const r = await post(app.url, { title });
            deepStrictEqual(seen(r), UNAVAILABLE);
            within(r, QUERY_TIMEOUT);
            match(app.log, /database unavailable: no answer from the database within DB_QUERY_TIMEOUT \(3 s\)$/m);
        } finally {
            fx.pg.sql("postgres", "ALTER SYSTEM RESET synchronous_standby_names");
            fx.pg.sql("postgres", "SELECT pg_reload_conf()");
        }
        await sleep(500);
        // The outcome was unknown to the client (hence 503 and Idempotency-Key): committed locally, released once
        // the standby requirement went.
        strictEqual(sql(`SELECT count(*) FROM task WHERE title = '${title}'`), "1");
        strictEqual((await post(app.url, { title: "after the standby requirement went" })).status, 201);
    });

    it("runs migrations without the API's statement timeout: a revision longer than it still applies", async function () {
        const SLOW_DB = "slow-migration-db";
        const dir = path.join(tempDir("app-slow-"), "app");
        try {
            fs.cpSync(fx.imageDir, dir, { recursive: true });
            fs.writeFileSync(
                path.join(dir, "migrations", "versions", "e6f7a8b9c0d1_slow_revision.py"),
                `"""slow revision"""\nfrom alembic import op\n\nrevision = 'e6f7a8b9c0d1'\ndown_revision = '3007f33e312a'\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    op.execute("SELECT pg_sleep(2)")\n\n\ndef downgrade():\n    pass\n`,
            );
            fx.pg.sql("postgres", `CREATE DATABASE "${SLOW_DB}" OWNER "stateful-flask-user"`);
            // DB_QUERY_TIMEOUT 1 s: the API's statements would be cancelled after 0.5 s.
            const r = await run(PYTHON, ["-m", "flask", "release-migrate"], {
                env: fx.env(SLOW_DB, { DB_QUERY_TIMEOUT: "1" }),
                cwd: dir,
            });
            strictEqual(r.status, 0, r.stderr);
            match(r.stderr, /Running upgrade 3007f33e312a -> e6f7a8b9c0d1, slow revision/);
            strictEqual(fx.pg.sql(SLOW_DB, "SELECT version_num FROM alembic_version"), "e6f7a8b9c0d1");
        } finally {
            fs.rmSync(path.dirname(dir), { recursive: true, force: true });
        }
    });
});

/** Holds ACCESS EXCLUSIVE on `task` for `seconds` in a session of its own; resolves when it let go. */
function locking(fx: ApiFixture, db: string, seconds: number): Promise<unknown> {
    return run(
        path.join(PG_BIN, "psql"),
        [
            "-X",
            "-h",
            fx.pg.root,
            "-p",
            String(fx.pg.port),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            `BEGIN; LOCK TABLE task; SELECT pg_sleep(${seconds}); COMMIT;`,
        ],
        {
            env: { PATH: "/usr/bin:/bin" },
            cwd: "/",
            timeoutMs: (seconds + 30) * 1000,
        },
    );
}
