/**
 * The API's Python unit tests (images/api/tests/unit/test_*.py, the standard library's unittest), run by the Python
 * the image ships (Debian's /usr/bin/python3, or APP_PYTHON), each reported as its own case.
 */
import { ok, strictEqual } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { APP_SOURCE, PYTHON, tempDir } from "./harness";

/** Runs the tests from a temporary copy of tasks_api/ and tests/unit/ (an APP_PYTHON in a chroot sees only that). */
function runUnitTests() {
    const root = tempDir("app-unit-");
    const unit = path.join(root, "tests", "unit");
    const noCache = (src: string) => !src.includes("__pycache__");
    fs.cpSync(path.join(APP_SOURCE, "tasks_api"), path.join(root, "tasks_api"), { recursive: true, filter: noCache });
    fs.cpSync(path.join(APP_SOURCE, "tests", "unit"), unit, { recursive: true, filter: noCache });
    const r = spawnSync(PYTHON, ["-m", "unittest", "discover", "-v", "-s", unit, "-p", "test_*.py"], {
        encoding: "utf8",
        cwd: unit,
        env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", PYTHONDONTWRITEBYTECODE: "1" },
        timeout: 120000,
    });
    fs.rmSync(root, { recursive: true, force: true });
    const outcomes = [
        ...r.stderr.matchAll(/^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure)$/gm),
    ].map((m) => ({
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
