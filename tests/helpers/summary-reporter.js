// Mocha's spec reporter plus one closing line, "N passed, N failed", that CI can read. Each failure, of a case or a
// hook, is also emitted on `process` as "test-failed" (with the full title) at once, before any after-hook runs,
// for suites that keep evidence then (tests/e2e/hooks.ts).
"use strict";
const Mocha = require("mocha");

class SummaryReporter extends Mocha.reporters.Spec {
    constructor(runner, options) {
        super(runner, options);
        runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, (test) => process.emit("test-failed", test.fullTitle()));
        runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
            const { passes, failures, pending } = runner.stats;
            process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ""}\n`);
        });
    }
}

module.exports = SummaryReporter;
