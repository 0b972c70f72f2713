import * as assert from "node:assert";
import { evaluate, type ProgramResource, unwrap } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

for (const stack of ["dev", "local"] as const) {
    describe(`index.ts with Pulumi.${stack}.yaml`, () => {
        let resources: ProgramResource[];
        let exports: Record<string, any>;
        before(async () => {
            ({ resources, exports } = await evaluate(stack));
        });

        it("registers one Postgres StatefulSet and one API Deployment with matching replica counts", () => {
            const sts = one(resources, T.statefulSet, "postgres");
            const api = one(resources, T.deployment, "stateful-flask");
            assert.strictEqual(sts.inputs.spec.replicas, 1);
            assert.strictEqual(api.inputs.spec.replicas, 1);
        });

        it("parents every resource under a component (nothing floats at the stack root but components)", () => {
            const stackUrn = one(resources, "pulumi:pulumi:Stack").urn;
            for (const r of resources.filter((x) => x.custom)) {
                assert.ok(r.parent && r.parent !== stackUrn, `${r.type} ${r.name} is not parented under a component`);
            }
        });

        it("uses one Kubernetes provider for every Kubernetes resource", () => {
            const providers = all(resources, T.k8sProvider);
            assert.strictEqual(providers.length, 1);
            for (const r of resources.filter((x) => x.custom && x.type.startsWith("kubernetes:"))) {
                assert.ok(r.provider?.startsWith(`${providers[0].urn}::`), `${r.type} ${r.name}`);
            }
        });

        it("exports the Postgres DNS names and keeps the password secret", async () => {
            assert.strictEqual((await unwrap(exports.postgresHost)).value, "postgres.postgres.svc.cluster.local");
            assert.strictEqual(
                (await unwrap(exports.postgresReadOnlyHost)).value,
                "postgres-ro.postgres.svc.cluster.local",
            );
            assert.strictEqual(
                (await unwrap(exports.postgresHeadlessHost)).value,
                "postgres-headless.postgres.svc.cluster.local",
            );
            assert.deepStrictEqual((await unwrap(exports.postgresPods)).value, [
                "postgres-0.postgres-headless.postgres.svc.cluster.local",
            ]);
            const password = await unwrap(exports.postgresPassword);
            assert.strictEqual(password.secret, true);
        });
    });
}

describe("bad configuration", () => {
    const cases: Array<[string, Record<string, string>, RegExp]> = [
        ["replicas below 1", { "stateful-flask:apiReplicas": "0" }, /^apiReplicas: 0 is not valid/],
        [
            "replicas not an integer",
            { "stateful-flask:postgresReplicas": "2.5" },
            /^postgresReplicas: "2\.5" is not valid/,
        ],
        ["unknown region", { "stateful-flask:region": "xyz1" }, /^region: "xyz1" is not valid; expected one of/],
        [
            "malformed host",
            { "stateful-flask:ingressHost": "http://drexii.me" },
            /^ingressHost: "http:\/\/drexii\.me" is not valid/,
        ],
        [
            "storage size not a quantity",
            { "stateful-flask:postgresStorageSize": "5 GB" },
            /^postgresStorageSize: "5 GB" is not valid/,
        ],
        [
            "image without a tag",
            { "stateful-flask:apiImage": "drexii/stateful-flask" },
            /^apiImage: "drexii\/stateful-flask" is not valid/,
        ],
        [
            "image with :latest",
            { "stateful-flask:apiImage": "drexii/stateful-flask:latest" },
            /^apiImage: "drexii\/stateful-flask:latest" is not valid/,
        ],
        [
            "unknown cluster mode",
            { "stateful-flask:clusterMode": "gke" },
            /^clusterMode: "gke" is not valid; expected one of digitalocean, existing$/,
        ],
        [
            "DOCR image without a registry",
            { "stateful-flask:apiImage": "registry.digitalocean.com/stateful-flask:v1.0.0" },
            /^apiImage: "registry\.digitalocean\.com\/stateful-flask:v1\.0\.0" is not valid; an image on registry\.digitalocean\.com is/,
        ],
        [
            "control-plane address not a CIDR",
            { "stateful-flask:controlPlaneAllowedAddresses": "203.0.113.0/40" },
            /^controlPlaneAllowedAddresses: "203\.0\.113\.0\/40" is not valid/,
        ],
    ];
    for (const [what, overrides, message] of cases) {
        it(`fails on ${what} before any resource is registered`, async () => {
            await assert.rejects(evaluate("dev", overrides), (err: any) => {
                assert.match(err.message, message);
                assert.deepStrictEqual(
                    err.registered.filter((r: ProgramResource) => r.type !== "pulumi:pulumi:Stack"),
                    [],
                );
                return true;
            });
        });
    }
});

describe("the local stack as local:up and the e2e suite deploy it", () => {
    it("registers no @pulumi/random resource once the generated secrets are set (the random provider cannot be built here)", async () => {
        // scripts/local/driver.ts sets these as secret config; a key missing there means a RandomPassword the engine
        // cannot create on this machine.
        const { LOCAL_CLUSTER_CONFIG, PASSWORD_KEYS } = await import("../scripts/local/driver");
        const { tlsMaterial } = await import("../components/postgres-tls");
        const cluster = {
            ...LOCAL_CLUSTER_CONFIG,
            "stateful-flask:backupCaCertificate": tlsMaterial("a-seed-for-a-test-ca-0123456789", [
                "s3.backup-store.svc.cluster.local",
            ]).caCert,
            "stateful-flask:backupAccessKeyId": "LOCALKEY",
            "stateful-flask:backupSecretAccessKey": "local-secret",
        };
        const secrets = Object.fromEntries(
            PASSWORD_KEYS.map((k) => [`stateful-flask:${k}`, "a-generated-secret-of-32-characters"]),
        );
        const { resources } = await evaluate("local", { ...cluster, ...secrets });
        assert.deepStrictEqual(
            resources.filter((r) => r.type.startsWith("random:")).map((r) => r.name),
            [],
        );
        const unset = await evaluate("local", cluster);
        assert.strictEqual(
            unset.resources.filter((r) => r.type.startsWith("random:")).length,
            PASSWORD_KEYS.length,
            "without them the program generates each one",
        );
    });
});
