/**
 * GET /tasks in pages (keyset on the id: `?after=<last id>&limit=<n>`, `next` and an RFC 8288 Link header to the
 * next page) and GET /tasks/<id>, on real PostgreSQL 15 up to 1,000,000 rows: a page reads as many buffers at the
 * end of the table as at its start, and the worker's memory stays flat however deep clients read.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import * as fs from "node:fs";
import { ApiFixture, ask } from "./api-fixture";
import { type AppServer, PYTHON, run } from "./harness";

const DB = "pages-db";
const MAX_ID = 2147483647;

describe("tasks API (images/api): pages of GET /tasks and GET /tasks/<id>", function () {
    this.timeout(180000);
    let fx: ApiFixture;
    let app: AppServer;
    const get = (route: string) => ask(app.url, "GET", route);
    /** Tasks 1..n, "task <id>" with a description on every third. */
    const seed = (n: number) => {
        fx.pg.sql(DB, "TRUNCATE task RESTART IDENTITY");
        fx.pg.sql(
            DB,
            `INSERT INTO task (title, description) SELECT 'task ' || g, CASE WHEN g % 3 = 0 THEN 'about ' || g END FROM generate_series(1, ${n}) g`,
        );
    };
    const task = (id: number) => ({ id, title: `task ${id}`, description: id % 3 === 0 ? `about ${id}` : null });
    const tasks = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => task(from + i));

    before(async function () {
        fx = await ApiFixture.create();
        await fx.database(DB);
        app = await fx.app(DB);
    });

    after(async function () {
        await fx?.teardown();
    });

    it('answers a table smaller than a page exactly as before paging: {"tasks": [...]}, no next, no Link', async function () {
        seed(3);
        const r = await get("/tasks");
        deepStrictEqual(
            { status: r.status, body: r.body, link: r.headers.get("link") },
            { status: 200, body: { tasks: tasks(1, 3) }, link: null },
        );
        // Exactly a page (100) is still one page: the API reads one row more to know.
        seed(100);
        const full = await get("/tasks");
        deepStrictEqual(
            { count: full.body.tasks.length, keys: Object.keys(full.body), link: full.headers.get("link") },
            { count: 100, keys: ["tasks"], link: null },
        );
    });

    it("pages 250 tasks by the default 100, each page linking the next (body and Link header), every task once in id order", async function () {
        seed(250);
        const first = await get("/tasks");
        deepStrictEqual(first.body, { tasks: tasks(1, 100), next: "/tasks?after=100" });
        strictEqual(first.headers.get("link"), '</tasks?after=100>; rel="next"');
        const second = await get(first.body.next);
        deepStrictEqual(second.body, { tasks: tasks(101, 200), next: "/tasks?after=200" });
        strictEqual(second.headers.get("link"), '</tasks?after=200>; rel="next"');
        const last = await get(second.body.next);
        deepStrictEqual(
            { body: last.body, link: last.headers.get("link") },
            { body: { tasks: tasks(201, 250) }, link: null },
        );
    });

    it("keeps an explicit limit in the next page's address, skips gaps in the ids, and answers an empty page past the end", async function () {
        seed(250);
        fx.pg.sql(DB, "DELETE FROM task WHERE id BETWEEN 3 AND 5");
        const r = await get("/tasks?limit=3");
        deepStrictEqual(
            { body: r.body, link: r.headers.get("link") },
            {
                body: { tasks: [task(1), task(2), task(6)], next: "/tasks?after=6&limit=3" },
                link: '</tasks?after=6&limit=3>; rel="next"',
            },
        );
        deepStrictEqual((await get("/tasks?after=6&limit=3")).body, {
            tasks: tasks(7, 9),
            next: "/tasks?after=9&limit=3",
        });
        deepStrictEqual((await get("/tasks?after=248&limit=3")).body, { tasks: tasks(249, 250) });
        deepStrictEqual((await get(`/tasks?after=250`)).body, { tasks: [] });
        deepStrictEqual((await get(`/tasks?after=${MAX_ID}&limit=1000`)).body, { tasks: [] });
        deepStrictEqual((await get("/tasks?limit=1000")).body.tasks.length, 247);
        // Leading zeros are still decimal.
        deepStrictEqual((await get("/tasks?after=0009&limit=01")).body, {
            tasks: [task(10)],
            next: "/tasks?after=10&limit=1",
        });
    });

    it("refuses a bad limit, after or parameter with 400 naming it, the value and what is allowed", async function () {
        const limit = (v: string) => `'limit' is '${v}'; allowed: an integer from 1 to 1000 (default 100)`;
        const afterIs = (v: string) =>
            `'after' is '${v}'; allowed: an integer from 0 to ${MAX_ID}, the last id of the previous page`;
        const cases: [string, string][] = [
            ["/tasks?limit=0", limit("0")],
            ["/tasks?limit=1001", limit("1001")],
            ["/tasks?limit=-5", limit("-5")],
            ["/tasks?limit=ten", limit("ten")],
            ["/tasks?limit=", limit("")],
            ["/tasks?limit=1.5", limit("1.5")],
            ["/tasks?limit=%2B5", limit("+5")],
            ["/tasks?limit=%205", limit(" 5")],
            // Other scripts' digits, which Python's int() takes.
            ["/tasks?limit=%D9%A5", limit("\u0665")],
            ["/tasks?after=-1", afterIs("-1")],
            ["/tasks?after=2147483648", afterIs("2147483648")],
            ["/tasks?after=99999999999999999999", afterIs("99999999999999999999")],
            ["/tasks?after=1e3", afterIs("1e3")],
            [`/tasks?after=${"9".repeat(60)}`, afterIs(`${"9".repeat(40)}…`)],
            ["/tasks?page=2", "unknown query parameter(s): page; allowed: after, limit"],
            ["/tasks?offset=100&limit=10&sort=id", "unknown query parameter(s): offset, sort; allowed: after, limit"],
            ["/tasks?limit=10&limit=20", "'limit' is given 2 times; give it once"],
        ];
        for (const [route, error] of cases) {
            const r = await get(route);
            deepStrictEqual({ status: r.status, body: r.body }, { status: 400, body: { error } }, route);
        }
    });

    it("GET /tasks/<id> answers the task, 404 naming a missing id, 400 for an id that is not one", async function () {
        seed(5);
        deepStrictEqual(await get("/tasks/3").then((r) => [r.status, r.body]), [200, task(3)]);
        deepStrictEqual(await get("/tasks/6").then((r) => [r.status, r.body]), [404, { error: "task 6 not found" }]);
        deepStrictEqual(await get(`/tasks/${MAX_ID}`).then((r) => [r.status, r.body]), [
            404,
            { error: `task ${MAX_ID} not found` },
        ]);
        for (const id of ["0", "-1", "abc", "2147483648", "3.0", "%203", "1e2"]) {
            const shown = decodeURIComponent(id);
            deepStrictEqual(
                await get(`/tasks/${id}`).then((r) => [r.status, r.body]),
                [400, { error: `task id '${shown}' is not valid; allowed: an integer from 1 to ${MAX_ID}` }],
                id,
            );
        }
        // A POSTed task reads back the same.
        const created = await ask(app.url, "POST", "/tasks", { body: { title: "read me", description: "back" } });
        deepStrictEqual(await get(`/tasks/${created.body.id}`).then((r) => [r.status, r.body]), [
            200,
            { id: 6, title: "read me", description: "back" },
        ]);
    });

    it("at 1,000,000 rows a page reads as many buffers at the end of the table as at its start (an index range scan)", async function () {
        seed(1000000);
        fx.pg.sql(DB, "VACUUM ANALYZE task");
        // The statement the API runs, from its code.
        const r = await run(PYTHON, ["-c", "from tasks_api import store; print(store.PAGE)"], {
            env: fx.env(DB),
            cwd: fx.imageDir,
        });
        strictEqual(r.status, 0, r.stderr);
        const sql = r.stdout.trim();
        const plan = (after: number) => {
            const bound = sql.replace("%s", String(after)).replace("%s", "101");
            const out = JSON.parse(fx.pg.sql(DB, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${bound}`))[0].Plan;
            return {
                scan: `${out.Plans[0]["Node Type"]} on ${out.Plans[0]["Index Name"]}`,
                rows: out["Actual Rows"],
                buffers: out["Shared Hit Blocks"] + out["Shared Read Blocks"],
            };
        };
        const start = plan(0);
        const end = plan(999000);
        deepStrictEqual(
            [start.scan, start.rows, end.scan, end.rows],
            ["Index Scan on task_pkey", 101, "Index Scan on task_pkey", 101],
        );
        // Three B-tree levels and the two or three heap pages that hold 101 rows, at either end.
        ok(
            start.buffers <= 8 && end.buffers <= 8 && Math.abs(start.buffers - end.buffers) <= 1,
            JSON.stringify({ start, end }),
        );

        const last = await get("/tasks?after=999990");
        deepStrictEqual(last.body, { tasks: tasks(999991, 1000000) });
        const deep = await get("/tasks?after=500000&limit=2");
        deepStrictEqual(deep.body, { tasks: tasks(500001, 500002), next: "/tasks?after=500002&limit=2" });
    });

    it("at 1,000,000 rows GET /tasks answers the first page, and a worker's memory stays flat over 100 pages of 1,000", async function () {
        const first = await get("/tasks");
        deepStrictEqual(
            { count: first.body.tasks.length, next: first.body.next },
            { count: 100, next: "/tasks?after=100" },
        );
        const workers = fs
            .readFileSync(`/proc/${app.pid}/task/${app.pid}/children`, "utf8")
            .trim()
            .split(/\s+/)
            .map(Number);
        const rss = () =>
            workers.map((pid) =>
                Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]),
            );
        for (let i = 0; i < 10; i++) await get(`/tasks?after=${i * 1000}&limit=1000`);
        const warm = rss();
        for (let i = 0; i < 100; i++)
            strictEqual((await get(`/tasks?after=${i * 9000}&limit=1000`)).body.tasks.length, 1000);
        const later = rss();
        // Each worker grew by less than 5 MB (a page of 1,000 tasks is about 60 kB of JSON) and stays far below the
        // pod's 256Mi limit; before paging, one GET /tasks at 95,000 rows got a worker killed at that limit.
        for (const [i, kb] of later.entries())
            ok(kb - warm[i] < 5 * 1024 && kb < 120 * 1024, JSON.stringify({ warm, later }));
    });
});
