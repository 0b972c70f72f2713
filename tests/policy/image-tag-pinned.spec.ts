import * as assert from "node:assert";
import { imageTagPinned, parseImage } from "../../policy/policies/image-tag-pinned";
import { type FakeResource, runResourcePolicy } from "./harness";
import { T, deployment, deploymentPatch, migrationJob, mutated, stack } from "./fixtures";

const API = "Deployment stateful-namespace/stateful-flask";
const apiContainer = (mutate: (c: any) => void) => [
    mutated(deployment(), (p) => mutate(p.spec.template.spec.containers[0])),
];

function cronJob(): FakeResource {
    const job = migrationJob();
    return {
        type: T.cronJob,
        name: "nightly",
        props: {
            metadata: { name: "nightly", namespace: "stateful-namespace" },
            spec: { schedule: "0 3 * * *", jobTemplate: { spec: structuredClone(job.props.spec) } },
        },
    };
}

describe("policy image-tag-pinned", () => {
    it("passes the compliant stack (the Helm release's values are not its business)", async () => {
        assert.deepStrictEqual(await runResourcePolicy(imageTagPinned, stack()), []);
    });

    it("parses tags, digests and registry ports", () => {
        assert.deepStrictEqual(parseImage("postgres:17.6"), { tag: "17.6", digest: undefined });
        assert.deepStrictEqual(parseImage("localhost:5000/app"), { tag: undefined, digest: undefined });
        assert.deepStrictEqual(parseImage("localhost:5000/app:v2@sha256:abc"), { tag: "v2", digest: "sha256:abc" });
    });

    it("reports an untagged image", async () => {
        assert.deepStrictEqual(
            await runResourcePolicy(
                imageTagPinned,
                apiContainer((c) => {
                    c.image = "registry.digitalocean.com/drexii/stateful-flask";
                }),
            ),
            [
                {
                    policy: "image-tag-pinned",
                    urn: undefined,
                    message:
                        `${API} container "api" uses image "registry.digitalocean.com/drexii/stateful-flask" without a tag, ` +
                        'which pulls whatever "latest" points to when a pod starts, so replicas can run different code. Pin a version tag or a digest.',
                },
            ],
        );
    });

    it("reports :latest, in init containers too", async () => {
        const resources = [
            mutated(deployment(), (p) => {
                p.spec.template.spec.initContainers[0].image = "postgres:latest";
            }),
        ];
        assert.deepStrictEqual(
            (await runResourcePolicy(imageTagPinned, resources)).map((v) => v.message),
            [
                `${API} init container "wait-for-db" uses image "postgres:latest"; the tag "latest" is mutable (disallowed: ` +
                    '"latest"), so replicas can run different code and a rollback does not roll back. Pin a version tag or a digest.',
            ],
        );
    });

    it("accepts a digest, and requires one when requireDigest is set", async () => {
        const digested = apiContainer((c) => {
            c.image = "registry.digitalocean.com/drexii/stateful-flask@sha256:0123";
        });
        assert.deepStrictEqual(await runResourcePolicy(imageTagPinned, digested), []);
        const tagged = [migrationJob()];
        assert.deepStrictEqual(
            (await runResourcePolicy(imageTagPinned, tagged, { requireDigest: true })).map((v) => v.message),
            [
                'Job stateful-namespace/stateful-flask-migrate-adb446bb56 container "migrate" uses image ' +
                    '"registry.digitalocean.com/drexii/stateful-flask:v1.0.0" without a digest; this pack requires one (requireDigest). ' +
                    'Pin it as "registry.digitalocean.com/drexii/stateful-flask:v1.0.0@sha256:<digest>".',
            ],
        );
    });

    it("checks CronJobs through their job template, and only the configured kinds", async () => {
        const latest = mutated(cronJob(), (p) => {
            p.spec.jobTemplate.spec.template.spec.containers[0].image = "busybox";
        });
        assert.strictEqual((await runResourcePolicy(imageTagPinned, [latest])).length, 1);
        assert.deepStrictEqual(await runResourcePolicy(imageTagPinned, [latest], { kinds: ["Deployment"] }), []);
    });

    it("reports an image a DeploymentPatch sets to :latest, and passes a patch that leaves the images as they are", async () => {
        const latest = deploymentPatch({
            template: {
                spec: {
                    containers: [{ name: "api", image: "registry.digitalocean.com/drexii/stateful-flask:latest" }],
                },
            },
        });
        assert.deepStrictEqual(
            (await runResourcePolicy(imageTagPinned, [...stack(), latest])).map((v) => v.message),
            [
                'DeploymentPatch stateful-namespace/stateful-flask container "api" uses image "registry.digitalocean.com/drexii/stateful-flask:latest"; ' +
                    'the tag "latest" is mutable (disallowed: "latest"), so replicas can run different code and a rollback does not roll back. ' +
                    "Pin a version tag or a digest.",
            ],
        );
        const envOnly = deploymentPatch({
            template: { spec: { containers: [{ name: "api", env: [{ name: "LOG_LEVEL", value: "debug" }] }] } },
        });
        assert.deepStrictEqual(await runResourcePolicy(imageTagPinned, [...stack(), envOnly]), []);
    });
});
