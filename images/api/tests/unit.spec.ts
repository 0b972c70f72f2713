/**
 * The API's Python unit tests (images/api/tests/unit/test_*.py, the standard library's unittest), run by the Python
 * the image ships (Debian's /usr/bin/python3, or APP_PYTHON), each reported as its own case.
 */
import { ok, strictEqual } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { PYTHON } from "./harness";

const UNIT = path.join(__dirname, "unit");

function runUnitTests() {
    const r = spawnSync(PYTHON, ["-m", "unittest", "discover", "-v", "-s", UNIT, "-p", "test_*.py"], {
        encoding: "utf8",
        cwd: UNIT,
        env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", PYTHONDONTWRITEBYTECODE: "1" },
        timeout: 120000,
    });
    const outcomes = [...r.stderr.matchAll(/^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure)$/gm)].map((m) => ({
        id: `${m[2]}.${m[1]}`,
        outcome: m[3],
    }));
    return { outcomes, details: r.stderr, status: r.status };
}

describe("tasks API (images/api): Python unit tests", function () {
    const run = runUnitTests();

    it("the unit tests ran and the runner exited 0", function () {
        ok(run.outcomes.length > 0, `no test found:\n${run.details}`);
        strictEqual(run.status, 0, run.details);
    });

    for (const { id, outcome } of run.outcomes) {
        it(id, function () {
            const section = run.details.split(/^={70}$/m).find((s) => s.includes(id.split(".").pop()!)) ?? run.details;
            strictEqual(outcome, "ok", section);
        });
    }
});
