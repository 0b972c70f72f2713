/**
 * POST /tasks bodies the API refuses: over 64 KiB (413), and JSON that looks valid but that PostgreSQL or Python
 * cannot take, which answered 500 with a traceback before (a NUL, a lone surrogate, deep nesting), or that was
 * accepted or misreported (duplicate keys, NaN, huge numbers, UTF-16, a byte-order mark, another charset). Each
 * gets its reason, and nothing is stored.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { ApiFixture, ask, post } from "./api-fixture";
import type { AppServer } from "./harness";

const DB = "limits-db";
const LIMIT = 65536;
const NEED =
    'request body must be a JSON object with Content-Type: application/json, e.g. {"title": "New task", "description": "optional, up to 200 characters"}';

describe("tasks API (images/api): request bodies it refuses, each with its reason and never a 500", function () {
    this.timeout(120000);
    let fx: ApiFixture;
    let app: AppServer;
    const stored = () => fx.pg.sql(DB, "SELECT count(*) FROM task");

    before(async function () {
        fx = await ApiFixture.create();
        await fx.database(DB);
        app = await fx.app(DB);
    });

    after(async function () {
        await fx?.teardown();
    });

    it("refuses a body over 64 KiB with 413 naming the limit, whether it has a Content-Length or is chunked", async function () {
        // Valid JSON of exactly the size given: a description padded to it.
        const head = '{"title": "big", "description": "';
        const sized = (bytes: number) => `${head}${"d".repeat(bytes - head.length - 2)}"}`;
        strictEqual(Buffer.byteLength(sized(LIMIT + 1)), LIMIT + 1);
        const over = await post(app.url, sized(LIMIT + 1));
        deepStrictEqual(
            { status: over.status, body: over.body },
            {
                status: 413,
                body: { error: `request body is ${LIMIT + 1} bytes; at most ${LIMIT} bytes (64 KiB) allowed` },
            },
        );
        // At the limit the body is read, and refused for what it says, not for its size.
        const at = await post(app.url, sized(LIMIT));
        deepStrictEqual(
            { status: at.status, body: at.body },
            {
                status: 400,
                body: { error: `'description' is ${LIMIT - head.length - 2} characters; at most 200 allowed` },
            },
        );

        // Chunked (no Content-Length): read up to the limit, not to the end; exactly the limit is read.
        const chunked = async (...chunks: Buffer[]) => {
            const stream = new ReadableStream({
                pull(controller) {
                    const next = chunks.shift();
                    if (next) controller.enqueue(next);
                    else controller.close();
                },
            });
            const r = await fetch(`${app.url}/tasks`, {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: stream,
                duplex: "half",
                signal: AbortSignal.timeout(15000),
            } as RequestInit);
            return { status: r.status, body: await r.json() };
        };
        deepStrictEqual(await chunked(Buffer.from(head), Buffer.alloc(10 * 1024 * 1024, "d"), Buffer.from('"}')), {
            status: 413,
            body: {
                error: `request body is more than ${LIMIT} bytes (sent chunked); at most ${LIMIT} bytes (64 KiB) allowed`,
            },
        });
        deepStrictEqual(
            await chunked(Buffer.from(sized(LIMIT).slice(0, 1000)), Buffer.from(sized(LIMIT).slice(1000))),
            {
                status: 400,
                body: { error: `'description' is ${LIMIT - head.length - 2} characters; at most 200 allowed` },
            },
        );
        strictEqual(stored(), "0");
    });

    it("answers 400 with the reason for JSON PostgreSQL or Python cannot take, which answered 500 before", async function () {
        const depth = 30000;
        const cases: [string, string][] = [
            // PostgreSQL's text has no NUL.
            [
                '{"title": "a\\u0000b"}',
                "'title' contains a NUL character (\\u0000) at position 1; PostgreSQL text cannot store it",
            ],
            [
                '{"title": "ok", "description": "\\u0000"}',
                "'description' contains a NUL character (\\u0000) at position 0; PostgreSQL text cannot store it",
            ],
            // A lone surrogate has no UTF-8 encoding.
            [
                '{"title": "\\ud800"}',
                "'title' contains a lone UTF-16 surrogate (\\ud800) at position 0; only Unicode characters are allowed (a surrogate must be half of a pair)",
            ],
            [
                '{"title": "ok", "description": "ab\\udfff"}',
                "'description' contains a lone UTF-16 surrogate (\\udfff) at position 2; only Unicode characters are allowed (a surrogate must be half of a pair)",
            ],
            [
                '{"title": "\\udc00\\ud800"}',
                "'title' contains a lone UTF-16 surrogate (\\udc00) at position 0; only Unicode characters are allowed (a surrogate must be half of a pair)",
            ],
            // Deeper than Python's recursion limit, well inside 64 KiB.
            [
                `{"title": "x", "description": ${"[".repeat(depth)}${"]".repeat(depth)}}`,
                `${NEED}; it nests arrays or objects too deeply`,
            ],
            [`${"[".repeat(depth)}${"]".repeat(depth)}`, `${NEED}; it nests arrays or objects too deeply`],
        ];
        for (const [body, error] of cases) {
            const r = await post(app.url, body);
            deepStrictEqual({ status: r.status, body: r.body }, { status: 400, body: { error } }, body.slice(0, 60));
        }
        // A surrogate pair is one character, and stored.
        const pair = await post(app.url, '{"title": "\\ud83d\\ude00"}');
        deepStrictEqual({ status: pair.status, title: pair.body.title }, { status: 201, title: "\u{1F600}" });
        strictEqual(fx.pg.sql(DB, "SELECT title FROM task"), "\u{1F600}");
        fx.pg.sql(DB, "TRUNCATE task");
        ok(!app.log.includes("Traceback"), app.log);
    });

    it("answers 400 with the reason for bodies Flask accepted or misreported: duplicate keys, NaN, huge numbers, other encodings, another type", async function () {
        const cases: [string | Buffer, Record<string, string>, string][] = [
            // Flask kept the last "title".
            ['{"title": "a", "title": "b"}', {}, `${NEED}; key "title" appears more than once`],
            // Not JSON at all (RFC 8259), though Python reads them.
            ['{"title": "x", "description": NaN}', {}, `${NEED}; NaN is not JSON`],
            ['{"title": "x", "description": -Infinity}', {}, `${NEED}; -Infinity is not JSON`],
            // 5,000 digits: Python's int() refuses them with advice about sys.set_int_max_str_digits.
            [`{"title": ${"9".repeat(5000)}}`, {}, `${NEED}; a number has 5000 characters; at most 100 allowed`],
            ['{"title": 1e99999}', {}, `${NEED}; the number 1e99999 is out of range`],
            // JSON is UTF-8; Flask also took UTF-16 and a byte-order mark.
            [Buffer.from('{"title": "\xff"}', "latin1"), {}, `${NEED}; it is not UTF-8 (byte 0xff at offset 11)`],
            [
                Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"title": "utf16"}', "utf16le")]),
                {},
                `${NEED}; it is not UTF-8 (byte 0xff at offset 0)`,
            ],
            [
                Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"title": "bom"}')]),
                {},
                `${NEED}; it is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)`,
            ],
            [
                '{"title": "x"}',
                { "Content-Type": "application/json; charset=utf-16" },
                `${NEED}; the charset is 'utf-16'; JSON is UTF-8`,
            ],
            ['{"title": "x"}', { "Content-Type": "text/plain" }, `${NEED}; the request's Content-Type is 'text/plain'`],
            ["", {}, `${NEED}; the body is empty`],
            ['{"title": ', {}, `${NEED}; it is not valid JSON: Expecting value: line 1 column 11 (char 10)`],
            ['"New task"', {}, `${NEED}; it is a string`],
            ["null", {}, `${NEED}; it is null`],
            // Thousands of unknown keys: the answer names five, not all.
            [
                JSON.stringify(
                    Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${String(i).padStart(4, "0")}`, 1])),
                ),
                {},
                "unknown field(s): k0000, k0001, k0002, k0003, k0004 and 4995 more; allowed: title, description",
            ],
        ];
        for (const [body, headers, error] of cases) {
            const r = await ask(app.url, "POST", "/tasks", {
                body,
                headers: { "Content-Type": "application/json", ...headers },
            });
            deepStrictEqual(
                { status: r.status, body: r.body },
                { status: 400, body: { error } },
                String(body).slice(0, 60),
            );
        }
        // No Content-Type at all.
        const bare = await fetch(`${app.url}/tasks`, {
            method: "POST",
            body: new Uint8Array(Buffer.from('{"title": "x"}')),
            signal: AbortSignal.timeout(10000),
        });
        deepStrictEqual(
            { status: bare.status, body: await bare.json() },
            { status: 400, body: { error: `${NEED}; the request has no Content-Type` } },
        );
        // What stays accepted: a charset of utf-8 in any spelling, and a +json type.
        for (const type of [
            "application/json; charset=UTF-8",
            "application/json;charset=utf8",
            "application/merge-patch+json",
        ]) {
            strictEqual((await post(app.url, '{"title": "typed"}', { "Content-Type": type })).status, 201, type);
        }
        strictEqual(stored(), "3");
        ok(!app.log.includes("Traceback"), app.log);
    });
});
