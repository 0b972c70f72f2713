/**
 * The pod code's Python unit tests (images/postgres/tests/unit/test_*.py, the standard library's unittest), run by the
 * Python the image ships (Debian's /usr/bin/python3), each reported as its own case.
 */
import * as assert from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { PYTHON } from "./harness";

const UNIT = path.join(__dirname, "unit");

/** Runs every test module once; returns each test's outcome and the failure texts by test id. */
function runUnitTests(): { outcomes: Array<{ id: string; outcome: string }>; details: string; status: number | null } {
    // -B: no __pycache__ in images/postgres/pod, which the image and the real-process tests copy.
    const r = spawnSync(PYTHON, ["-B", "-m", "unittest", "discover", "-v", "-s", UNIT, "-p", "test_*.py"], {
        encoding: "utf8",
        cwd: UNIT,
        timeout: 120000,
    });
    const outcomes: Array<{ id: string; outcome: string }> = [];
    for (const m of r.stderr.matchAll(
        /^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure)$/gm,
    )) {
        outcomes.push({ id: `${m[2].replace(/\.\w+$/, "")}.${m[1]}`, outcome: m[3] });
    }
    return { outcomes, details: r.stderr, status: r.status };
}

describe("Postgres pod code: Python unit tests", function () {
    const run = runUnitTests();

    it("the unit tests ran and the runner exited 0", () => {
        assert.ok(run.outcomes.length > 0, `no test found:\n${run.details}`);
        assert.strictEqual(run.status, 0, run.details);
    });

    for (const { id, outcome } of run.outcomes) {
        it(id, () => {
            const section = run.details.split(/^={70}$/m).find((s) => s.includes(id.split(".").pop()!)) ?? run.details;
            assert.strictEqual(outcome, "ok", section);
        });
    }
});
