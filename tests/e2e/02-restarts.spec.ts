/**
 * Restarts, each proven on the rows through the API and on every Postgres pod: every pod deleted, the node's
 * kubelet and containerd restarted, and `kubectl rollout restart` of both workloads.
 */
import * as assert from "node:assert";
import { localClusterScript } from "../../scripts/local/driver";
import {
    API,
    API_NS,
    NS,
    ApiWriter,
    converge,
    e2e,
    get,
    healthy,
    k,
    postTask,
    postgresPods,
    rowsEverywhere,
} from "./fixture";

describe("e2e 02: restarts keep every row", function () {
    before(async () => {
        await converge();
        for (let i = 0; i < 20; i++)
            assert.strictEqual((await postTask(`before restarts ${i}`, "seed row")).status, 201);
    });

    it("deleting every Postgres and API pod: new pods (new UIDs), same rows", async () => {
        const before = await rowsEverywhere();
        const uids = (await postgresPods()).map((p) => p.metadata.uid);
        await k(["delete", "pods", "-n", NS, "-l", "app=postgres", "--wait=false"]);
        await k(["delete", "pods", "-n", API_NS, "-l", `app=${API}`, "--wait=false"]);
        await healthy();
        const after = (await postgresPods()).map((p) => p.metadata.uid);
        assert.ok(
            after.every((uid) => !uids.includes(uid)),
            "the Postgres pods are new",
        );
        assert.deepStrictEqual(await rowsEverywhere(), before);
    });

    it("restarting the kubelet and containerd: running pods survive, rows intact, writes continue", async () => {
        const before = await rowsEverywhere();
        const containers = (await postgresPods()).map((p) => p.status.containerStatuses[0].containerID);
        localClusterScript((await e2e()).cluster, ["restart-node"]);
        await healthy();
        assert.deepStrictEqual(
            (await postgresPods()).map((p) => p.status.containerStatuses[0].containerID),
            containers,
            "the containers kept running across the restart of their runtime",
        );
        assert.deepStrictEqual(await rowsEverywhere(), before);
        assert.strictEqual((await postTask("after the node restart")).status, 201);
    });

    it("kubectl rollout restart of the StatefulSet and the Deployment under writes: every 201 is present", async () => {
        const writer = new ApiWriter("rollout restart");
        await writer.waitForAcks(10);
        const revision = (await get(["statefulset", "postgres", "-n", NS])).status.updateRevision;
        await k(["rollout", "restart", "-n", NS, "statefulset/postgres"]);
        await k(["rollout", "restart", "-n", API_NS, `deployment/${API}`]);
        await k(["rollout", "status", "-n", NS, "statefulset/postgres", "--timeout=600s"]);
        await k(["rollout", "status", "-n", API_NS, `deployment/${API}`, "--timeout=600s"]);
        await healthy();
        await writer.waitForAcks(10);
        await writer.stop();
        assert.notStrictEqual((await get(["statefulset", "postgres", "-n", NS])).status.updateRevision, revision);
        const rows = await rowsEverywhere();
        assert.deepStrictEqual(writer.missingFrom(rows), [], "acknowledged writes missing after the restart");
    });
});
