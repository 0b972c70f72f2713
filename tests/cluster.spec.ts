import * as assert from "node:assert";
import { buildKubeconfig } from "../components/doks-cluster";
import { evaluate, isSecretInput, type ProgramResource, unwrap } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

describe("DoksCluster component (dev stack)", () => {
    let resources: ProgramResource[];
    let exports: Record<string, any>;
    before(async () => {
        ({ resources, exports } = await evaluate("dev"));
    });

    it("creates a VPC and a cluster in the configured region with the newest release of the version prefix", () => {
        const vpc = one(resources, T.doVpc);
        const cluster = one(resources, T.doCluster);
        assert.strictEqual(vpc.inputs.region, "fra1");
        assert.strictEqual(cluster.inputs.region, "fra1");
        assert.strictEqual(cluster.inputs.version, "1.35.4-do.1");
        assert.ok(cluster.dependencies.includes(vpc.urn));
    });

    it("configures the node pool, surge upgrades, maintenance window and HA", () => {
        const cluster = one(resources, T.doCluster);
        assert.deepStrictEqual(cluster.inputs.nodePool, {
            name: "stateful-flask-default",
            size: "s-2vcpu-4gb",
            autoScale: false,
            nodeCount: 3,
            labels: { "stateful-flask/pool": "default" },
        });
        assert.strictEqual(cluster.inputs.surgeUpgrade, true);
        assert.strictEqual(cluster.inputs.autoUpgrade, true);
        assert.strictEqual(cluster.inputs.ha, false);
        assert.deepStrictEqual(cluster.inputs.maintenancePolicy, { day: "sunday", startTime: "04:00" });
        assert.strictEqual(cluster.inputs.destroyAllAssociatedResources, false);
        assert.strictEqual(cluster.inputs.clusterSubnet, "10.244.0.0/16");
        assert.strictEqual(cluster.protect, true);
    });

    it("autoscales between min and max when asked", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:autoScale": "true",
            "stateful-flask:minNodes": "2",
            "stateful-flask:maxNodes": "5",
        });
        const pool = one(run.resources, T.doCluster).inputs.nodePool;
        assert.strictEqual(pool.autoScale, true);
        assert.strictEqual(pool.minNodes, 2);
        assert.strictEqual(pool.maxNodes, 5);
        assert.strictEqual(pool.nodeCount, undefined);
    });

    it("leaves the control-plane firewall off by default, and says so to the provider", () => {
        const cluster = one(resources, T.doCluster);
        assert.deepStrictEqual(cluster.inputs.controlPlaneFirewall, { enabled: false, allowedAddresses: [] });
    });

    it("turns the control-plane firewall on for the configured addresses", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:controlPlaneAllowedAddresses": "203.0.113.7, 198.51.100.0/24",
        });
        assert.deepStrictEqual(one(run.resources, T.doCluster).inputs.controlPlaneFirewall, {
            enabled: true,
            allowedAddresses: ["203.0.113.7", "198.51.100.0/24"],
        });
    });

    it("builds a kubeconfig on the stack's DigitalOcean token, not the 7-day token, and keeps it secret", async () => {
        const { value, secret } = await unwrap<string>(exports.kubeconfig);
        assert.strictEqual(secret, true);
        const kc = JSON.parse(value!);
        assert.strictEqual(kc.users[0].user.token, "dop_v1_mock_token");
        assert.strictEqual(kc.clusters[0].cluster.server, "https://stateful-flask.k8s.ondigitalocean.com");
        assert.ok(!value!.includes("doks-7-day-token"));
        const provider = one(resources, T.k8sProvider);
        assert.ok(isSecretInput(provider, "kubeconfig"), `provider secret inputs: ${provider.secretInputs}`);
        assert.strictEqual(provider.inputs.deleteUnreachable, "false");
    });

    it("deploys every Kubernetes resource through the cluster's provider", () => {
        const provider = one(resources, T.k8sProvider);
        const k8sResources = resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
        assert.ok(k8sResources.length >= 15);
        for (const r of k8sResources) {
            assert.ok(r.provider?.startsWith(`${provider.urn}::`), `${r.type} ${r.name} uses ${r.provider}`);
        }
    });

    it("fails with the offered versions when the prefix matches none", async () => {
        await assert.rejects(
            evaluate("dev", { "stateful-flask:kubernetesVersionPrefix": "1.30." }),
            (err: any) =>
                err.message ===
                    'kubernetesVersionPrefix: "1.30." is not valid; DigitalOcean offers no Kubernetes release with this prefix; it offers 1.34.9-do.0, 1.35.4-do.1, 1.36.1-do.0' &&
                err.registered.every((r: ProgramResource) => r.type === "pulumi:pulumi:Stack"),
        );
    });

    it("needs a DigitalOcean token", async () => {
        const saved = { a: process.env.DIGITALOCEAN_TOKEN, b: process.env.DIGITALOCEAN_ACCESS_TOKEN };
        delete process.env.DIGITALOCEAN_TOKEN;
        delete process.env.DIGITALOCEAN_ACCESS_TOKEN;
        try {
            await assert.rejects(
                evaluate("dev", { "digitalocean:token": undefined }),
                (err: any) =>
                    err.message.startsWith(
                        "digitalocean:token: undefined is not valid; clusterMode digitalocean needs a DigitalOcean API token",
                    ) && err.registered.every((r: ProgramResource) => r.type === "pulumi:pulumi:Stack"),
            );
        } finally {
            Object.assign(
                process.env,
                saved.a ? { DIGITALOCEAN_TOKEN: saved.a } : {},
                saved.b ? { DIGITALOCEAN_ACCESS_TOKEN: saved.b } : {},
            );
        }
    });

    it("buildKubeconfig writes one cluster, user and context", () => {
        const kc = JSON.parse(buildKubeconfig("do-x", "https://x", "Q0E=", "tok"));
        assert.strictEqual(kc["current-context"], "do-x");
        assert.deepStrictEqual(kc.clusters, [
            { name: "do-x", cluster: { server: "https://x", "certificate-authority-data": "Q0E=" } },
        ]);
        assert.deepStrictEqual(kc.users, [{ name: "do-x-admin", user: { token: "tok" } }]);
    });
});

describe("ExistingCluster component (local stack)", () => {
    it("creates no DigitalOcean resources and binds the provider to the current context", async () => {
        const { resources, exports } = await evaluate("local");
        assert.deepStrictEqual(
            resources.filter((r) => r.type.startsWith("digitalocean:")),
            [],
        );
        const provider = one(resources, T.k8sProvider);
        assert.strictEqual(provider.inputs.context, undefined);
        assert.strictEqual(exports.kubeconfig, undefined);
        const run = await evaluate("local", { "stateful-flask:kubeconfigContext": "kind-stateful" });
        assert.strictEqual(one(run.resources, T.k8sProvider).inputs.context, "kind-stateful");
        assert.strictEqual(
            all(run.resources, T.statefulSet)[0].inputs.spec.volumeClaimTemplates[0].spec.storageClassName,
            "standard",
        );
    });
});
