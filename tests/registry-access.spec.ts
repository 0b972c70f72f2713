import * as assert from "node:assert";
import { docrRegistryName } from "../components/registry-access";
import { ConfigError } from "../components/validate";
import { evaluate, isSecretInput, mockDockerCredentials, type ProgramResource } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

const DOCR_IMAGE = "registry.digitalocean.com/drexii/stateful-flask:v1.0.0";

/** The API's DOCR credentials (the Postgres component has its own, in its namespace: tests/postgres.spec.ts). */
const apiCredentials = (resources: ProgramResource[]) =>
    all(resources, T.docrCredentials).filter((r) => r.name === "api-docr-credentials");
const apiPullSecret = (resources: ProgramResource[]) =>
    all(resources, T.secret).filter(
        (r) =>
            r.inputs.type === "kubernetes.io/dockerconfigjson" && r.inputs.metadata.namespace === "stateful-namespace",
    );

/** What gives the API's pods pull access: DOCR credentials, dockerconfigjson Secrets, the pods' imagePullSecrets. */
function pullAccess(resources: ProgramResource[]) {
    return {
        registries: apiCredentials(resources).map((r) => r.inputs.registryName),
        secrets: apiPullSecret(resources).map((r) => r.inputs.metadata.name),
        deployment: one(resources, T.deployment, "stateful-flask").inputs.spec.template.spec.imagePullSecrets,
        job: all(resources, T.job)[0].inputs.spec.template.spec.imagePullSecrets,
    };
}

const granted = (registry: string) => ({
    registries: [registry],
    secrets: [`docr-${registry}`],
    deployment: [{ name: `docr-${registry}` }],
    job: [{ name: `docr-${registry}` }],
});
const none = { registries: [], secrets: [], deployment: undefined, job: undefined };

describe("docrRegistryName", () => {
    it("names the registry of an image on registry.digitalocean.com, tagged or by digest", () => {
        assert.strictEqual(docrRegistryName(DOCR_IMAGE), "drexii");
        assert.strictEqual(
            docrRegistryName("registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1"),
            "drexii",
        );
        assert.strictEqual(
            docrRegistryName(`registry.digitalocean.com/other-team/tools/app@sha256:${"a".repeat(64)}`),
            "other-team",
        );
    });

    it("is undefined for an image on any other registry", () => {
        for (const image of [
            "postgres:15.20-bookworm",
            "drexii/stateful-flask:v1.0.0",
            "docker.io/drexii/stateful-flask:v1.0.0",
            "ghcr.io/drexii/stateful-flask:v1.0.0",
            "localhost:5000/stateful-flask:v1",
            "stateful-flask:v1.0.0",
            "registry.digitalocean.com.example.org/drexii/stateful-flask:v1.0.0",
        ]) {
            assert.strictEqual(docrRegistryName(image), undefined, image);
        }
    });

    it("rejects an image on registry.digitalocean.com that names no registry", () => {
        assert.throws(
            () => docrRegistryName("registry.digitalocean.com/stateful-flask:v1.0.0", "apiImage"),
            (err: unknown) =>
                err instanceof ConfigError &&
                err.message ===
                    `apiImage: "registry.digitalocean.com/stateful-flask:v1.0.0" is not valid; an image on registry.digitalocean.com is registry.digitalocean.com/<registry>/<repository>:<tag>, the registry name of lower-case letters, digits and '-'`,
        );
    });
});

describe("image pull access (dev stack, API image on DOCR)", () => {
    let resources: ProgramResource[];
    before(async () => {
        resources = (await evaluate("dev")).resources;
    });

    it("makes read-only DOCR credentials for the registry named in the image", () => {
        const [credentials, ...more] = apiCredentials(resources);
        assert.deepStrictEqual(more, []);
        assert.strictEqual(credentials.inputs.registryName, "drexii");
        assert.strictEqual(credentials.inputs.write, false);
        assert.strictEqual(credentials.inputs.expirySeconds, undefined);
    });

    it("stores them, kept secret, in a kubernetes.io/dockerconfigjson Secret in the API namespace", () => {
        const [secret] = apiPullSecret(resources);
        assert.strictEqual(secret.inputs.metadata.name, "docr-drexii");
        assert.strictEqual(secret.inputs.type, "kubernetes.io/dockerconfigjson");
        assert.strictEqual(secret.inputs.metadata.namespace, "stateful-namespace");
        assert.deepStrictEqual(Object.keys(secret.inputs.stringData), [".dockerconfigjson"]);
        assert.strictEqual(secret.inputs.stringData[".dockerconfigjson"], mockDockerCredentials("drexii"));
        assert.ok(isSecretInput(secret, "stringData..dockerconfigjson"), `secret inputs: ${secret.secretInputs}`);
        assert.ok(secret.dependencies.includes(apiCredentials(resources)[0].urn));
    });

    it("names the Secret in the Deployment's and the migration Job's pod templates, which wait for it", () => {
        assert.deepStrictEqual(pullAccess(resources), granted("drexii"));
        const [secret] = apiPullSecret(resources);
        assert.ok(one(resources, T.deployment, "stateful-flask").dependencies.includes(secret.urn));
        assert.ok(all(resources, T.job)[0].dependencies.includes(secret.urn));
    });

    it("follows the registry in the image", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:apiImage": "registry.digitalocean.com/other-team/stateful-flask:v2.0.0",
        });
        assert.deepStrictEqual(pullAccess(run.resources), granted("other-team"));
    });

    it("gives an image on another registry no DOCR credentials and no imagePullSecrets", async () => {
        assert.deepStrictEqual(pullAccess(resources), granted("drexii"));
        for (const image of [
            "ghcr.io/drexii/stateful-flask:v1.0.0",
            "drexii/stateful-flask:v1.0.0",
            "stateful-flask:v1.0.0",
        ]) {
            const run = await evaluate("dev", { "stateful-flask:apiImage": image });
            assert.deepStrictEqual(pullAccess(run.resources), none, image);
        }
    });

    it("is turned off by docrPullAccess false", async () => {
        assert.deepStrictEqual(pullAccess(resources), granted("drexii"));
        const run = await evaluate("dev", { "stateful-flask:docrPullAccess": "false" });
        assert.deepStrictEqual(pullAccess(run.resources), none);
    });
});

describe("image pull access (local stack, existing cluster)", () => {
    it("is off by default, and docrPullAccess true turns it on for a DOCR image", async () => {
        const byDefault = await evaluate("local");
        assert.deepStrictEqual(pullAccess(byDefault.resources), none);
        const on = await evaluate("local", { "stateful-flask:docrPullAccess": "true" });
        assert.deepStrictEqual(pullAccess(on.resources), granted("drexii"));
    });

    it("fails before any resource is registered when docrPullAccess is on and no DigitalOcean token is configured", async () => {
        const saved = { a: process.env.DIGITALOCEAN_TOKEN, b: process.env.DIGITALOCEAN_ACCESS_TOKEN };
        delete process.env.DIGITALOCEAN_TOKEN;
        delete process.env.DIGITALOCEAN_ACCESS_TOKEN;
        try {
            await assert.rejects(
                evaluate("local", { "stateful-flask:docrPullAccess": "true", "digitalocean:token": undefined }),
                (err: any) => {
                    assert.strictEqual(
                        err.message,
                        "digitalocean:token: undefined is not valid; docrPullAccess with an image on registry.digitalocean.com needs a DigitalOcean API token: pulumi config set --secret digitalocean:token <token>, or DIGITALOCEAN_TOKEN in the environment",
                    );
                    assert.deepStrictEqual(
                        err.registered.filter((r: ProgramResource) => r.type !== "pulumi:pulumi:Stack"),
                        [],
                    );
                    return true;
                },
            );
        } finally {
            Object.assign(
                process.env,
                saved.a ? { DIGITALOCEAN_TOKEN: saved.a } : {},
                saved.b ? { DIGITALOCEAN_ACCESS_TOKEN: saved.b } : {},
            );
        }
    });
});
