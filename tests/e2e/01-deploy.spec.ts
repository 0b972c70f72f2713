/**
 * The first deployment on the real node: containers really run (a test that fails on a fake node), the seed's own
 * request works, a second `up` and a `preview` change nothing, and the policy pack runs in `preview`.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LOCAL_INGRESS_HOST, LOCAL_INGRESS_IP, ROOT, key, onOutput } from "../../scripts/local/driver";
import {
    API,
    API_NS,
    NS,
    configure,
    converge,
    e2e,
    get,
    healthy,
    listTasks,
    postTask,
    postgresPods,
    psql,
    rowsEverywhere,
    up,
    viaIngress,
} from "./fixture";

/** The head of the API image's migrations: the one revision no other revision names as its down_revision. */
function migrationsHead(): string {
    const dir = path.join(ROOT, "images/api/migrations/versions");
    const revisions = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".py"))
        .map((f) => {
            const text = fs.readFileSync(path.join(dir, f), "utf8");
            const field = (name: string) => new RegExp(`^${name} = ['"]([0-9a-f]+)['"]`, "m").exec(text)?.[1];
            return { revision: field("revision"), down: field("down_revision") };
        });
    const heads = revisions.filter((r) => !revisions.some((o) => o.down === r.revision));
    assert.strictEqual(heads.length, 1, `expected one migrations head in ${dir}: ${JSON.stringify(revisions)}`);
    return heads[0].revision as string;
}

describe("e2e 01: the local stack deployed with the real engine on a real node", function () {
    it("deploys everything; Postgres bootstraps through Patroni and the migration Job runs against it", async () => {
        await e2e();
        const first = await up();
        assert.ok(
            (first.summary.resourceChanges?.create ?? 0) >= 20,
            `created: ${JSON.stringify(first.summary.resourceChanges)}`,
        );
        const { leader, replicas } = await healthy();
        assert.strictEqual(leader, "postgres-0");
        assert.deepStrictEqual(replicas, []);
        assert.strictEqual(await psql(leader, "SHOW data_checksums"), "on");
        assert.strictEqual(await psql(leader, "SELECT version_num FROM alembic_version"), migrationsHead());
        const job = first.outputs.migrationJob.value as string;
        const status = (await get(["job", job, "-n", API_NS])).status;
        assert.strictEqual(status.succeeded, 1);
        assert.strictEqual(status.failed ?? 0, 0, "the migration Job waited for the database: no failed attempt");
    });

    it("runs real containers: containerd IDs, pod IPs from the bridge, a node that is not fake", async () => {
        const node = (await get(["nodes"])).items;
        assert.strictEqual(node.length, 1);
        assert.strictEqual(
            node[0].metadata.annotations?.["kwok.x-k8s.io/node"],
            undefined,
            "a kwok node runs no containers",
        );
        assert.match(node[0].status.nodeInfo.containerRuntimeVersion, /^containerd:\/\/1\.6\./);
        assert.match(node[0].status.nodeInfo.kubeletVersion, /^v1\.36\./);
        const pods = [...(await postgresPods()), ...(await get(["pods", "-n", API_NS, "-l", `app=${API}`])).items];
        for (const p of pods) {
            for (const c of p.status.containerStatuses) {
                assert.match(c.containerID, /^containerd:\/\/[0-9a-f]{64}$/, `${p.metadata.name}/${c.name}`);
                assert.ok(c.state.running?.startedAt, `${p.metadata.name}/${c.name} is running`);
            }
            assert.match(p.status.podIP, /^10\.244\.0\.\d+$/);
        }
    });

    it("answers the seed's request: POST /tasks returns 201 and GET /tasks lists it, and the row is on the pod", async () => {
        const r = await postTask("New task", "Deploy the stateful microservice");
        assert.strictEqual(r.status, 201);
        assert.deepStrictEqual(r.task, {
            id: r.task!.id,
            title: "New task",
            description: "Deploy the stateful microservice",
        });
        const listed = await listTasks();
        assert.ok(listed.some((t) => t.id === r.task!.id && t.title === "New task"));
        const rows = await rowsEverywhere();
        assert.ok(rows.count >= 1);
    });

    it("serves the API through the ingress: Host drexii.me reaches it through Traefik, and the Ingress publishes the controller's address", async () => {
        const result = await up();
        assert.strictEqual(result.outputs.ingressAddress.value, LOCAL_INGRESS_IP);
        assert.strictEqual(result.outputs.apiUrl.value, `http://${LOCAL_INGRESS_HOST}`);
        const created = await viaIngress(LOCAL_INGRESS_HOST, "POST", "/tasks", {
            title: "Through the ingress",
            description: "Host: drexii.me",
        });
        assert.strictEqual(created.status, 201, created.body);
        const id = JSON.parse(created.body).id;
        const listed = await viaIngress(LOCAL_INGRESS_HOST, "GET", "/tasks");
        assert.strictEqual(listed.status, 200);
        assert.ok(JSON.parse(listed.body).tasks.some((t: any) => t.id === id && t.title === "Through the ingress"));
        assert.strictEqual(
            (await viaIngress("other.example", "GET", "/tasks")).status,
            404,
            "a host the Ingress does not name is not routed",
        );
        await rowsEverywhere();
    });

    it("a second up and a preview change nothing", async () => {
        const { stack } = await e2e();
        const preview = await stack.preview({ diff: true, onOutput: onOutput() });
        assert.deepStrictEqual(
            Object.keys(preview.changeSummary),
            ["same"],
            `preview: ${JSON.stringify(preview.changeSummary)}\n${preview.stdout}`,
        );
        const second = await up();
        assert.deepStrictEqual(
            Object.keys(second.summary.resourceChanges ?? {}),
            ["same"],
            `second up: ${JSON.stringify(second.summary.resourceChanges)}`,
        );
    });

    it("preview with the policy pack passes, and fails on replica-counts-match when the API's replicas differ", async () => {
        const { stack } = await e2e();
        const policyPacks = [path.join(ROOT, "policy")];
        const policyPackConfigs = [path.join(ROOT, "policy", "policy-config.local.json")];
        const ok = await stack.preview({ policyPacks, policyPackConfigs, onOutput: onOutput() });
        assert.match(ok.stdout, /stateful-flask-policies/);
        assert.doesNotMatch(ok.stdout, /mandatory/);
        await configure({ [key("apiReplicas")]: "3" });
        let failure: any;
        try {
            await stack.preview({ policyPacks, policyPackConfigs, onOutput: onOutput() });
        } catch (err) {
            failure = err;
        }
        assert.ok(failure, "preview with apiReplicas 3 and postgresReplicas 1 passed the policy pack");
        assert.match(
            `${failure.message ?? ""}${failure.stdout ?? ""}${failure.stderr ?? ""}`,
            /replica-counts-match[\s\S]*mandatory|mandatory[\s\S]*replica-counts-match/,
        );
        assert.strictEqual(
            (await get(["deployment", API, "-n", API_NS])).spec.replicas,
            1,
            "a preview changes nothing",
        );
        await converge();
        assert.strictEqual((await get(["statefulset", "postgres", "-n", NS])).spec.replicas, 1);
    });
});
