/**
 * A cluster that is gone without a stop: every process of the control plane and the node killed with SIGKILL (the
 * script killed, or a machine restored without its processes), while the containers run on. `local-cluster.sh
 * reclaim` (what the suite and local:up run before they start a cluster) must find its traces, kill the containers
 * that outlived their runtime (a postmaster among them would still hold its volume), free the node, and a new
 * cluster on the same volumes must come back with every row. Runs last but for teardown: it replaces the cluster.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT, claimNode, sh } from "../../scripts/local/driver";
import { converge, e2e, healthy, postTask, psql, rowsEverywhere, startAgain, up } from "./fixture";

/**
 * Processes whose root is a container rootfs under `stateDir` (what reclaim must kill), with their command lines: in
 * their mount namespace "/" is an overlay with its layers under the state dir.
 */
function containerProcesses(stateDir: string): string[] {
    return fs
        .readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .flatMap((p) => {
            try {
                const root = fs
                    .readFileSync(`/proc/${p}/mountinfo`, "utf8")
                    .split("\n")
                    .filter((l) => l.split(" ")[4] === "/");
                if (!root.some((l) => l.includes(`=${stateDir}/`))) return [];
                return [`${p} ${fs.readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").trim()}`];
            } catch {
                return [];
            }
        });
}

describe("e2e 09: the cluster's processes killed without a stop", function () {
    it("reclaim kills the containers that outlived their runtime and frees the node; a new cluster on the same volumes has every row", async () => {
        const { cluster } = await e2e();
        await converge();
        for (let i = 0; i < 10; i++)
            assert.strictEqual((await postTask(`before the machine is lost ${i}`)).status, 201);
        const before = await rowsEverywhere();
        await psql("postgres-0", "CHECKPOINT");

        const pidsDir = path.join(cluster.stateDir, "pids");
        const pids = fs.readdirSync(pidsDir).map((f) => Number(fs.readFileSync(path.join(pidsDir, f), "utf8").trim()));
        assert.ok(pids.length >= 8, `the cluster's processes: ${pids}`);
        for (const pid of pids) process.kill(pid, "SIGKILL");
        await new Promise((r) => setTimeout(r, 2000));
        const orphans = containerProcesses(cluster.stateDir);
        assert.ok(
            orphans.some((p) => /postgres/.test(p)),
            `a postmaster outlives its runtime: ${orphans.join("; ")}`,
        );

        assert.strictEqual(claimNode(cluster.bin), undefined, "reclaim frees the node");
        assert.deepStrictEqual(containerProcesses(cluster.stateDir), [], "no container process is left");
        sh(path.join(ROOT, "scripts", "local-cluster.sh"), ["check-clean"], {
            env: {
                ...process.env,
                LOCAL_CLUSTER_STATE: cluster.stateDir,
                LOCAL_CLUSTER_VOLUMES: cluster.volumesDir,
                LOCAL_CLUSTER_BIN: cluster.bin,
            },
        });
        assert.ok(fs.existsSync(path.join(cluster.volumesDir, "postgres")), "the volumes are kept");

        await startAgain();
        await up({ refresh: true });
        await healthy(600);
        assert.deepStrictEqual(await rowsEverywhere(), before, "every row, on the same volumes");
        assert.strictEqual((await postTask("after the machine came back")).status, 201);
    });
});
