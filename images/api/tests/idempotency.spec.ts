/**
 * Idempotency-Key on POST /tasks, on real PostgreSQL 15 and two API servers (two pods) sharing it: a key stored in
 * the statement that inserts the task, the first answer replayed, one task per key under concurrent retries and
 * across a server that stopped answering mid-request, a clear 422 for a reused key and 400 for a bad one, and keys
 * that expire after 24 hours and are pruned by later keyed writes.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { randomUUID } from "node:crypto";
import { ApiFixture, type Answer, post } from "./api-fixture";
import { type AppServer, sleep } from "./harness";

const DB = "idempotency-db";
const HEADER = "Idempotency-Key";
const KEY_RULE = "allowed: 1 to 255 characters from A-Z a-z 0-9 - _ . ~ : + / = (a random UUID is a good key)";

describe("tasks API (images/api): Idempotency-Key on POST /tasks", function () {
    this.timeout(180000);
    let fx: ApiFixture;
    let app: AppServer;
    /** A second API server on the same database: another pod. */
    let other: AppServer;
    const sql = (q: string) => fx.pg.sql(DB, q);
    const keyed = (base: string, body: unknown, key: string) => post(base, body, { [HEADER]: key });
    const seen = (r: Answer) => ({ status: r.status, body: r.body, replayed: r.headers.get("idempotent-replayed") });

    before(async function () {
        fx = await ApiFixture.create();
        await fx.database(DB);
        app = await fx.app(DB);
        other = await fx.app(DB);
    });

    after(async function () {
        await fx?.teardown();
    });

    beforeEach(function () {
        sql("TRUNCATE task, idempotency_key RESTART IDENTITY");
    });

    it("creates the task once and stores its key in the same statement; the same key answers the first 201 again, marked as a replay", async function () {
        const key = randomUUID();
        const task = { title: "Pay rent", description: "before the 5th" };
        deepStrictEqual(seen(await keyed(app.url, task, key)), {
            status: 201,
            body: { id: 1, ...task },
            replayed: null,
        });
        deepStrictEqual(
            sql("SELECT key || ' ' || task_id || ' ' || length(request_hash) FROM idempotency_key"),
            `${key} 1 32`,
        );
        // The key row and the task come from one transaction.
        strictEqual(
            sql(
                "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM task UNION ALL SELECT xmin FROM idempotency_key) x",
            ),
            "1",
        );
        // A retry, from either server, and spelled differently (key order, spacing, an explicit null is not).
        for (const [base, body] of [
            [app.url, task],
            [other.url, task],
            [app.url, ` { "description" : "before the 5th",\n "title": "Pay rent" } `],
        ] as const) {
            deepStrictEqual(seen(await keyed(base, body, key)), {
                status: 201,
                body: { id: 1, ...task },
                replayed: "true",
            });
        }
        // The IETF draft's structured-field form, "…", names the same key.
        deepStrictEqual(seen(await keyed(app.url, task, `"${key}"`)), {
            status: 201,
            body: { id: 1, ...task },
            replayed: "true",
        });
        strictEqual(
            sql("SELECT count(*) || ' tasks, ' || (SELECT count(*) FROM idempotency_key) || ' key' FROM task"),
            "1 tasks, 1 key",
        );
        // Without a key every POST is a new task, as before.
        // Each replay drew a value from the id sequence before finding the key taken: ids 2 to 5 are skipped.
        strictEqual((await post(app.url, task)).body.id, 6);
        strictEqual((await post(app.url, task)).body.id, 7);
    });

    it("answers 422 naming the key when it is reused for a different request, and 409 when its task is gone", async function () {
        const key = "order-2026-0001";
        strictEqual((await keyed(app.url, { title: "first" }, key)).status, 201);
        const firstUsed = sql(
            `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') FROM idempotency_key`,
        );
        for (const body of [{ title: "second" }, { title: "first", description: "now with one" }]) {
            const r = await keyed(other.url, body, key);
            deepStrictEqual(seen(r), {
                status: 422,
                body: {
                    error: `Idempotency-Key '${key}' was first used at ${firstUsed}+00:00 with a different request; a key may only be reused to retry the same request`,
                },
                replayed: null,
            });
        }
        // {"title": "first"} and {"title": "first", "description": null} ask for the same task.
        deepStrictEqual(seen(await keyed(app.url, { title: "first", description: null }, key)), {
            status: 201,
            body: { id: 1, title: "first", description: null },
            replayed: "true",
        });
        sql("DELETE FROM task");
        deepStrictEqual(seen(await keyed(app.url, { title: "first" }, key)), {
            status: 409,
            body: {
                error: `Idempotency-Key '${key}' was first used at ${firstUsed}+00:00 and created task 1, which no longer exists`,
            },
            replayed: null,
        });
        strictEqual(sql("SELECT count(*) FROM task"), "0");
    });

    it("refuses a key that is empty, too long or has other characters with 400 saying what is allowed, storing nothing", async function () {
        const cases: [string, string][] = [
            ["", "''"],
            ['""', "'\"\"'"],
            ["k".repeat(256), `'${"k".repeat(40)}…'`],
            ["two words", "'two words'"],
            ["a,b", "'a,b'"],
            ["caf\u00e9", "'caf\u00e9'"],
            ['"unterminated', "'\"unterminated'"],
        ];
        for (const [key, shown] of cases) {
            const r = await post(app.url, { title: "x" }, { [HEADER]: key });
            deepStrictEqual(
                { status: r.status, body: r.body },
                { status: 400, body: { error: `Idempotency-Key ${shown} is not valid; ${KEY_RULE}` } },
                key,
            );
        }
        // Two headers arrive joined by a comma.
        const both = await fetch(`${app.url}/tasks`, {
            method: "POST",
            headers: [
                ["Content-Type", "application/json"],
                [HEADER, "a"],
                [HEADER, "b"],
            ],
            body: '{"title": "x"}',
            signal: AbortSignal.timeout(10000),
        });
        deepStrictEqual(
            { status: both.status, body: await both.json() },
            { status: 400, body: { error: `Idempotency-Key 'a, b' is not valid; ${KEY_RULE}` } },
        );
        // The longest key and every allowed character.
        for (const key of ["k".repeat(255), "AZaz09-_.~:+/="])
            strictEqual((await keyed(app.url, { title: "ok" }, key)).status, 201, key);
        strictEqual(sql("SELECT count(*) || ' ' || (SELECT count(*) FROM idempotency_key) FROM task"), "2 2");
    });

    it("creates one task per key when 24 requests with the same key race on two servers, for each of 10 keys", async function () {
        const keys = Array.from({ length: 10 }, () => randomUUID());
        const answers = await Promise.all(
            keys.flatMap((key, k) =>
                Array.from({ length: 24 }, (_, i) =>
                    keyed(i % 2 ? other.url : app.url, { title: `task ${k}` }, key).then((r) => ({ key, k, r })),
                ),
            ),
        );
        for (const [k, key] of keys.entries()) {
            const mine = answers.filter((a) => a.key === key).map((a) => a.r);
            strictEqual(mine.length, 24);
            ok(
                mine.every((r) => r.status === 201 && r.body.title === `task ${k}`),
                JSON.stringify(mine.map(seen)),
            );
            strictEqual(new Set(mine.map((r) => r.body.id)).size, 1, `one id for key ${k}`);
            deepStrictEqual(mine.map((r) => r.headers.get("idempotent-replayed")).sort(), [
                null,
                ...Array(23).fill("true"),
            ]);
        }
        strictEqual(sql("SELECT count(*) FROM task"), "10");
        strictEqual(
            sql("SELECT count(*) FROM idempotency_key k JOIN task t ON t.id = k.task_id AND t.title LIKE 'task %'"),
            "10",
        );
    });

    it("lets a key expire after 24 hours (then it creates a new task) and prunes expired keys 10 per keyed insert, oldest first", async function () {
        // 25 keys: 15 of them older than 24 hours, k00 the oldest.
        for (let i = 0; i < 25; i++)
            strictEqual((await keyed(app.url, { title: `t${i}` }, `k${String(i).padStart(2, "0")}`)).status, 201);
        sql(
            "UPDATE idempotency_key SET created_at = now() - interval '24 hours 1 minute' - (15 - substr(key, 2)::int) * interval '1 minute' WHERE substr(key, 2)::int < 15",
        );
        const keysLeft = () => sql("SELECT string_agg(key, ' ' ORDER BY key) FROM idempotency_key");

        // A fresh key prunes the 10 oldest expired ones.
        strictEqual((await keyed(app.url, { title: "fresh" }, "fresh-1")).status, 201);
        strictEqual(
            keysLeft(),
            `fresh-1 k10 k11 k12 k13 k14 ${Array.from({ length: 10 }, (_, i) => `k${15 + i}`).join(" ")}`,
        );
        // An expired key is new again: a new task, not a replay, even with a different request.
        deepStrictEqual(seen(await keyed(app.url, { title: "again" }, "k12")), {
            status: 201,
            body: { id: 27, title: "again", description: null },
            replayed: null,
        });
        // ... and it pruned the other four expired keys (never its own row, which it claimed again).
        strictEqual(keysLeft(), "fresh-1 k12 k15 k16 k17 k18 k19 k20 k21 k22 k23 k24");
        strictEqual(sql("SELECT count(*) FROM idempotency_key WHERE created_at <= now() - interval '24 hours'"), "0");
        strictEqual(sql("SELECT task_id FROM idempotency_key WHERE key = 'k12'"), "27");
        // An unexpired key still replays.
        deepStrictEqual(seen(await keyed(app.url, { title: "t20" }, "k20")), {
            status: 201,
            body: { id: 21, title: "t20", description: null },
            replayed: "true",
        });
    });

    it("creates the task exactly once when the first attempt got a 503 from a server that stopped answering mid-request and the retry came after it resumed", async function () {
        const key = randomUUID();
        strictEqual((await post(app.url, { title: "warm the pool" })).status, 201);
        fx.pg.freeze();
        let first: Answer;
        try {
            first = await keyed(app.url, { title: "exactly once" }, key);
        } finally {
            fx.pg.thaw();
        }
        deepStrictEqual(
            { status: first.status, body: first.body },
            { status: 503, body: { error: "database unavailable, retry later" } },
        );
        // The statement had reached the server's socket: once resumed, the server runs and commits it, although the
        // client gave up and got a 503. A 503 does not say "not done"; the key makes the retry safe.
        for (let i = 0; i < 50 && sql("SELECT count(*) FROM task WHERE title = 'exactly once'") === "0"; i++)
            await sleep(100);
        strictEqual(sql("SELECT count(*) FROM task WHERE title = 'exactly once'"), "1");
        const retry = await keyed(other.url, { title: "exactly once" }, key);
        deepStrictEqual(seen(retry), {
            status: 201,
            body: { id: 2, title: "exactly once", description: null },
            replayed: "true",
        });
        strictEqual(sql("SELECT count(*) || ' ' || min(id) FROM task WHERE title = 'exactly once'"), "1 2");
        match(app.log, /database unavailable: no answer from the database within DB_QUERY_TIMEOUT \(3 s\)/);
    });
});
