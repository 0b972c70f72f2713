/**
 * The leader pod lost under writes through the API, three members: deleted (its preStop switches over first),
 * force-deleted, and its container killed with SIGKILL from the node (a crash: no preStop, no shutdown). Each time a new leader takes writes, every
 * write acknowledged with 201 is on every member, and no two members accepted writes at once.
 */
import * as assert from "node:assert";
import { key } from "../../scripts/local/driver";
import {
    ApiWriter,
    NS,
    WritableSampler,
    configure,
    converge,
    healthy,
    k,
    killContainer,
    rowsEverywhere,
    up,
} from "./fixture";

describe("e2e 04: losing the leader pod under writes (Patroni, three members)", function () {
    before(async () => {
        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        await healthy();
    });

    after(async () => {
        await converge();
    });

    for (const how of [
        "deleted (preStop switchover)",
        "force-deleted (no grace)",
        "killed: SIGKILL to its container from the node (a crash)",
    ]) {
        it(`the leader pod ${how}: a new leader, every 201 on every member, never two writable members`, async () => {
            const { leader } = await healthy();
            const writer = new ApiWriter(`leader ${how}`);
            const sampler = new WritableSampler();
            await writer.waitForAcks(20);
            const at = Date.now();
            if (how.startsWith("killed")) {
                // The container's PID 1 (Patroni) and with it the postmaster: what an OOM kill or a runtime crash does.
                await killContainer(leader);
            } else {
                const force = how.startsWith("force");
                await k([
                    "delete",
                    "pod",
                    "-n",
                    NS,
                    leader,
                    ...(force ? ["--grace-period=0", "--force"] : []),
                    "--wait=false",
                ]);
            }
            const next = await healthy(300);
            // A killed container restarts in the same pod within seconds; its Patroni may still hold a valid lock and
            // resume as leader (no failover needed). Any other way, another member leads.
            if (!how.startsWith("killed")) assert.notStrictEqual(next.leader, leader, "another member leads");
            await writer.waitForAcks(20);
            await writer.stop();
            await sampler.stop();
            const split = sampler.splitBrain();
            const gap = writer.failures.filter((f) => f.at >= at);
            process.stderr.write(
                `      ${how}: leader ${leader} -> ${next.leader}; ${gap.length} requests failed (503) during the change, ${writer.acked.length} acknowledged\n`,
            );
            const rows = await rowsEverywhere();
            assert.deepStrictEqual(writer.missingFrom(rows), [], "acknowledged writes missing");
            assert.deepStrictEqual(split, [], "samples with two writable members");
            assert.ok(
                writer.failures.every((f) => f.status === 503 || typeof f.status === "string"),
                `failures other than 503: ${JSON.stringify(writer.failures.filter((f) => f.status !== 503))}`,
            );
        });
    }
});
