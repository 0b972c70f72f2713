/**
 * End-to-end: the real program, the real Pulumi engine (CLI v3.259.0, pulumi-resource-kubernetes) and a live
 * Kubernetes API server (scripts/kwok-cluster.sh: etcd, kube-apiserver, controller-manager, scheduler, kwok).
 * Every step asserts on the live objects through the built kubectl.
 *
 * kwok marks pods Ready and Job pods Succeeded; containers never run, so "no data lost" is proven by the
 * identity of the PVCs and their PVs (names, UIDs, bindings), not by their content.
 *
 * Each step first brings the stack back to the committed Pulumi.local.yaml (one `up`, a no-op when the
 * previous step ended there), so a failed step does not fail the next ones.
 *
 * Run: npm run test:e2e (scripts/e2e.sh). E2E_VERBOSE=1 streams the engine's output; E2E_KEEP=1 keeps the
 * state dir (and stops the cluster all the same).
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Stack, UpResult } from "@pulumi/pulumi/automation";
import {
    Cluster, PROJECT, ROOT, STORAGE_CLASS, SUITE_PORTS, committedConfig, getJson, kubectl, onOutput, openStack,
    setConfig, startCluster, stopCluster, toolchainBin, waitFor,
} from "./driver";

const NS = "postgres";
const API_NS = "stateful-namespace";
const API = "stateful-flask";
const key = (k: string) => `${PROJECT}:${k}`;
const BASE = committedConfig();
const IMAGE_V1 = BASE[key("apiImage")];
const IMAGE_V2 = IMAGE_V1.replace(/:[^:/]+$/, ":v1.1.0");
const pvcName = (ordinal: number) => `postgredb-volume-postgres-${ordinal}`;

interface PvcIdentity { name: string; uid: string; volumeName: string; phase: string; storage: string }

describe("e2e: the local stack with the real engine on a live API server", function () {
    let tmp: string;
    let cluster: Cluster;
    let stack: Stack;
    /** The config keys a step may change; converge() puts them back. */
    const changed = new Set<string>();

    // ------------------------------------------------------------------------------------------ helpers
    async function up(opts: { refresh?: boolean } = {}): Promise<UpResult> {
        const result = await stack.up({ onOutput: onOutput(), refresh: opts.refresh });
        assert.strictEqual(result.summary.result, "succeeded", `up: ${result.summary.result}\n${result.stderr}`);
        return result;
    }

    async function configure(values: Record<string, string>): Promise<void> {
        Object.keys(values).forEach(k => changed.add(k));
        await setConfig(stack, values);
    }

    /** Back to Pulumi.local.yaml's config, deployed. */
    async function converge(): Promise<UpResult> {
        if (changed.size) {
            await setConfig(stack, Object.fromEntries([...changed].map(k => [k, BASE[k]])));
            changed.clear();
        }
        return up();
    }

    function pvc(ordinal: number): PvcIdentity | undefined {
        const o = getJson(cluster, ["pvc", pvcName(ordinal), "-n", NS]);
        return o && {
            name: o.metadata.name,
            uid: o.metadata.uid,
            volumeName: o.spec.volumeName ?? "",
            phase: o.status?.phase ?? "",
            storage: o.spec.resources.requests.storage,
        };
    }

    /** Waits until the PVC exists and is Bound to a PV that names it back. */
    async function boundPvc(ordinal: number): Promise<PvcIdentity> {
        return waitFor(`${pvcName(ordinal)} Bound`, 60, () => {
            const p = pvc(ordinal);
            if (!p || p.phase !== "Bound" || !p.volumeName) {
                return undefined;
            }
            const pv = getJson(cluster, ["pv", p.volumeName]);
            return pv?.spec.claimRef?.uid === p.uid && pv.status.phase === "Bound" ? p : undefined;
        });
    }

    const statefulSet = () => getJson(cluster, ["statefulset", "postgres", "-n", NS]);
    const deployment = () => getJson(cluster, ["deployment", API, "-n", API_NS]);
    const pod = (name: string, ns = NS) => getJson(cluster, ["pod", name, "-n", ns]);
    const postgresPodNames = (): string[] =>
        getJson(cluster, ["pods", "-n", NS, "-l", "app=postgres"]).items.map((p: any) => p.metadata.name).sort();

    function jobComplete(name: string): boolean {
        const job = getJson(cluster, ["job", name, "-n", API_NS]);
        return (job?.status?.conditions ?? []).some((c: any) => c.type === "Complete" && c.status === "True");
    }

    /** The claim each Postgres pod mounts. */
    function claimOf(podName: string): string | undefined {
        return (pod(podName)?.spec.volumes ?? []).find((v: any) => v.name === "postgredb-volume")?.persistentVolumeClaim?.claimName;
    }

    // -------------------------------------------------------------------------------------------- setup
    before(async function () {
        this.timeout(5 * 60 * 1000);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stateful-flask-e2e-"));
        const bin = toolchainBin();
        cluster = startCluster(path.join(tmp, "cluster"), bin, SUITE_PORTS);
        stack = await openStack({ stateDir: path.join(tmp, "pulumi"), cluster });
    });

    after(function () {
        this.timeout(2 * 60 * 1000);
        if (tmp) {
            stopCluster(path.join(tmp, "cluster"));
            if (!process.env.E2E_KEEP) {
                fs.rmSync(tmp, { recursive: true, force: true });
            }
        }
    });

    // ------------------------------------------------------------------------------------------- steps
    it("1. a fresh `up` deploys everything, and a second `up` and `preview` change nothing", async () => {
        const first = await up();
        assert.ok((first.summary.resourceChanges?.create ?? 0) >= 15, `created: ${JSON.stringify(first.summary.resourceChanges)}`);

        // Live objects.
        const sts = statefulSet();
        assert.strictEqual(sts.spec.replicas, 1);
        assert.strictEqual(sts.status.readyReplicas, 1);
        assert.strictEqual(sts.spec.serviceName, "postgres-headless");
        assert.deepStrictEqual(sts.spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: "Retain", whenScaled: "Retain" });
        assert.strictEqual(sts.spec.volumeClaimTemplates[0].spec.storageClassName, STORAGE_CLASS);
        const p0 = await boundPvc(0);
        assert.strictEqual(p0.storage, "5Gi");
        assert.strictEqual(claimOf("postgres-0"), pvcName(0));
        assert.deepStrictEqual(postgresPodNames(), ["postgres-0"]);
        assert.strictEqual(deployment().status.readyReplicas, 1);
        const job = first.outputs.migrationJob.value as string;
        assert.match(job, /^stateful-flask-migrate-[0-9a-f]{10}$/);
        assert.ok(jobComplete(job), `${job} is not Complete`);
        assert.strictEqual(getJson(cluster, ["service", "postgres-headless", "-n", NS]).spec.clusterIP, "None");
        // The passwords come from secret config: no random provider in the state, secret outputs stay secret.
        const state = await stack.exportStack();
        const types: string[] = state.deployment.resources.map((r: any) => r.type);
        assert.ok(!types.some(t => t.startsWith("random:")), `random resources in state: ${types.filter(t => t.startsWith("random:"))}`);
        assert.strictEqual(first.outputs.postgresPassword.secret, true);
        const creds = getJson(cluster, ["secrets", "-n", NS]).items.map((s: any) => s.metadata.name);
        assert.ok(creds.length >= 1, "no Secret in the postgres namespace");

        // No perpetual diffs.
        const preview = await stack.preview({ diff: true, onOutput: onOutput() });
        assert.deepStrictEqual(Object.keys(preview.changeSummary), ["same"], `preview: ${JSON.stringify(preview.changeSummary)}\n${preview.stdout}`);
        const second = await up();
        assert.deepStrictEqual(Object.keys(second.summary.resourceChanges ?? {}), ["same"], `second up: ${JSON.stringify(second.summary.resourceChanges)}`);
        assert.strictEqual(second.summary.resourceChanges?.same, preview.changeSummary.same);
    });

    it("2. `preview` with the policy pack passes, and fails on replica-counts-match when the API's replicas differ", async () => {
        await converge();
        const policyPacks = [path.join(ROOT, "policy")];
        const policyPackConfigs = [path.join(ROOT, "policy", "policy-config.local.json")];

        const ok = await stack.preview({ policyPacks, policyPackConfigs, onOutput: onOutput() });
        assert.match(ok.stdout, /stateful-flask-policies/);
        assert.doesNotMatch(ok.stdout, /mandatory/);
        assert.deepStrictEqual(Object.keys(ok.changeSummary), ["same"]);

        await configure({ [key("apiReplicas")]: "3" });
        let failure: any;
        try {
            await stack.preview({ policyPacks, policyPackConfigs, onOutput: onOutput() });
        } catch (err) {
            failure = err;
        }
        assert.ok(failure, "preview with apiReplicas 3 and postgresReplicas 1 passed the policy pack");
        const text = `${failure.message ?? ""}${failure.stdout ?? ""}${failure.stderr ?? ""}`;
        assert.match(text, /replica-counts-match/);
        assert.match(text, /mandatory/);
        // A preview changes nothing.
        assert.strictEqual(deployment().spec.replicas, 1);
    });

    it("3. scaling 1 → 3 → 1 → 3 → 1 keeps the same PVCs bound to the same PVs", async () => {
        await converge();
        const first = await boundPvc(0);

        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        assert.strictEqual(statefulSet().status.readyReplicas, 3);
        assert.strictEqual(deployment().status.readyReplicas, 3);
        const bound = [await boundPvc(0), await boundPvc(1), await boundPvc(2)];
        assert.deepStrictEqual(bound[0], first);
        assert.deepStrictEqual(new Set(bound.map(b => b.volumeName)).size, 3, "two PVCs share a PV");
        for (let i = 0; i < 3; i++) {
            assert.strictEqual(claimOf(`postgres-${i}`), pvcName(i));
        }

        await configure({ [key("postgresReplicas")]: "1", [key("apiReplicas")]: "1" });
        await up();
        assert.strictEqual(statefulSet().spec.replicas, 1);
        await waitFor("postgres-1 and postgres-2 gone", 60, () => postgresPodNames().join() === "postgres-0");
        assert.strictEqual(deployment().spec.replicas, 1);
        for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(pvc(i), bound[i], `${pvcName(i)} changed on scale-down`);
        }

        await configure({ [key("postgresReplicas")]: "3", [key("apiReplicas")]: "3" });
        await up();
        for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(await boundPvc(i), bound[i], `${pvcName(i)} is not the same PVC/PV after scaling up again`);
            assert.strictEqual(claimOf(`postgres-${i}`), pvcName(i));
        }
        assert.strictEqual(getJson(cluster, ["pvc", "-n", NS]).items.length, 3, "a new PVC appeared");

        await configure({ [key("postgresReplicas")]: "1", [key("apiReplicas")]: "1" });
        await up();
        await waitFor("postgres-1 and postgres-2 gone", 60, () => postgresPodNames().join() === "postgres-0");
        for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(pvc(i), bound[i]);
        }
    });

    it("4. an API image upgrade and rollback run the release's migration Job and leave Postgres alone", async () => {
        const base = await converge();
        const jobV1 = base.outputs.migrationJob.value as string;
        const pg0 = pod("postgres-0");
        const pvc0 = await boundPvc(0);

        await configure({ [key("apiImage")]: IMAGE_V2 });
        const upgraded = await up();
        const jobV2 = upgraded.outputs.migrationJob.value as string;
        assert.notStrictEqual(jobV2, jobV1);
        assert.ok(jobComplete(jobV2), `${jobV2} is not Complete`);
        assert.strictEqual(getJson(cluster, ["job", jobV2, "-n", API_NS]).spec.template.spec.containers[0].image, IMAGE_V2);
        assert.strictEqual(deployment().spec.template.spec.containers[0].image, IMAGE_V2);
        assert.strictEqual(deployment().status.updatedReplicas, 1);
        assert.strictEqual(pod("postgres-0").metadata.uid, pg0.metadata.uid, "postgres-0 was restarted by an API upgrade");
        assert.deepStrictEqual(pvc(0), pvc0);

        await configure({ [key("apiImage")]: IMAGE_V1 });
        const rolledBack = await up();
        assert.strictEqual(rolledBack.outputs.migrationJob.value, jobV1);
        assert.ok(jobComplete(jobV1), `${jobV1} is not Complete after the rollback`);
        assert.strictEqual(getJson(cluster, ["job", jobV2, "-n", API_NS]), undefined, `${jobV2} was not removed`);
        assert.strictEqual(deployment().spec.template.spec.containers[0].image, IMAGE_V1);
        assert.deepStrictEqual(postgresPodNames(), ["postgres-0"]);
        assert.strictEqual(pod("postgres-0").metadata.uid, pg0.metadata.uid, "postgres-0 was restarted by an API rollback");
        assert.deepStrictEqual(pvc(0), pvc0);
    });

    it("5. a StatefulSet deleted outside Pulumi comes back with `up --refresh`, bound to the same PVCs", async () => {
        await converge();
        const before = statefulSet();
        const claims = [0, 1, 2].map(i => pvc(i)).filter((p): p is PvcIdentity => p !== undefined);
        assert.ok(claims.length >= 1);

        kubectl(cluster, ["delete", "statefulset", "postgres", "-n", NS, "--wait=true"]);
        await waitFor("postgres-0 gone", 60, () => postgresPodNames().length === 0);
        assert.strictEqual(statefulSet(), undefined);

        await up({ refresh: true });
        const after = statefulSet();
        assert.notStrictEqual(after.metadata.uid, before.metadata.uid, "the StatefulSet was not recreated");
        assert.strictEqual(after.status.readyReplicas, 1);
        assert.strictEqual(claimOf("postgres-0"), pvcName(0));
        assert.deepStrictEqual(await boundPvc(0), claims[0]);
        for (const c of claims) {
            assert.deepStrictEqual(pvc(Number(c.name.slice(-1))), c);
        }
        const again = await stack.preview({ onOutput: onOutput() });
        assert.deepStrictEqual(Object.keys(again.changeSummary), ["same"], `after recovery: ${JSON.stringify(again.changeSummary)}`);
    });

    it("6. growing the storage 5Gi → 6Gi resizes the PVCs in place without replacing the StatefulSet", async () => {
        await converge();
        const sts = statefulSet();
        const pvc0 = await boundPvc(0);
        assert.strictEqual(pvc0.storage, "5Gi");

        await configure({ [key("postgresStorageSize")]: "6Gi" });
        const preview = await stack.preview({ diff: true, onOutput: onOutput() });
        for (const op of ["replace", "create-replacement", "delete-replaced", "delete", "create"]) {
            assert.ok(!(op in preview.changeSummary), `preview plans ${op}: ${JSON.stringify(preview.changeSummary)}`);
        }
        const result = await up();
        assert.ok((result.summary.resourceChanges?.update ?? 0) >= 1, JSON.stringify(result.summary.resourceChanges));

        const after = statefulSet();
        assert.strictEqual(after.metadata.uid, sts.metadata.uid, "the StatefulSet was replaced");
        assert.strictEqual(after.status.readyReplicas, 1);
        const grown = pvc(0)!;
        assert.strictEqual(grown.storage, "6Gi");
        assert.deepStrictEqual({ ...grown, storage: "5Gi" }, pvc0, "the PVC is not the same claim on the same PV");
        assert.strictEqual(claimOf("postgres-0"), pvcName(0));
        // Retained PVCs of the scaled-down ordinals are not touched.
        for (const i of [1, 2]) {
            const p = pvc(i);
            if (p) {
                assert.strictEqual(p.storage, "5Gi");
            }
        }
    });
});
