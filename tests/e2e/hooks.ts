/** Root hooks of the e2e suite (.mocharc.e2e.json): the shared cluster is stopped once, after every spec. */
import { teardown } from "./fixture";

export const mochaHooks = {
    afterAll(this: Mocha.Context): void {
        this.timeout(5 * 60 * 1000);
        teardown();
    },
};
