/**
 * Root hooks of the e2e suite (.mocharc.e2e.json): the shared cluster is stopped once, after every spec, and also
 * when the run is interrupted (Ctrl-C, a CI timeout's SIGTERM), so that no kubelet, mount or iptables chain outlives it;
 * a failed case leaves the cluster's objects, events and logs behind first (recordFailure).
 */
import { recordFailure, teardown } from "./fixture";

for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
        process.stderr.write(`\n[e2e] ${signal}: stopping the cluster before exiting\n`);
        teardown();
        process.exit(signal === "SIGINT" ? 130 : 143);
    });
}

// Emitted by the reporter (tests/helpers/summary-reporter.js) for a failed case or hook, before the after-hooks converge.
(process as NodeJS.EventEmitter).on("test-failed", (title: string) => recordFailure(title));

export const mochaHooks = {
    afterAll(this: Mocha.Context): void {
        this.timeout(5 * 60 * 1000);
        teardown();
    },
};
