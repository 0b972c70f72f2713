import * as assert from "node:assert";
import { migrationJobName } from "../components/tasks-api";
import { evaluate, isSecretInput, type ProgramResource } from "./helpers/program";
import { all, one, selects, T } from "./helpers/resources";

describe("TasksApi component (dev stack)", () => {
    let resources: ProgramResource[];
    let deployment: ProgramResource;
    before(async () => {
        resources = (await evaluate("dev")).resources;
        deployment = one(resources, T.deployment, "stateful-flask");
    });

    it("runs the configured image and replicas in the tutorial's namespace", () => {
        assert.strictEqual(deployment.inputs.metadata.namespace, "stateful-namespace");
        assert.strictEqual(deployment.inputs.spec.replicas, 1);
        assert.strictEqual(
            deployment.inputs.spec.template.spec.containers[0].image,
            "registry.digitalocean.com/drexii/stateful-flask:v1.0.0",
        );
        assert.deepStrictEqual(deployment.inputs.spec.selector.matchLabels, { app: "stateful-flask" });
        assert.strictEqual(deployment.inputs.metadata.labels["app.kubernetes.io/component"], "api");
        assert.strictEqual(deployment.inputs.metadata.labels["app.kubernetes.io/part-of"], "stateful-flask");
    });

    it("moves the container's port, PORT, the probes and the Service's target together with apiPort", async () => {
        const run = await evaluate("dev", { "stateful-flask:apiPort": "8080" });
        const c = one(run.resources, T.deployment, "stateful-flask").inputs.spec.template.spec.containers[0];
        assert.deepStrictEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
        assert.deepStrictEqual(c.env, [{ name: "PORT", value: "8080" }]);
        assert.deepStrictEqual([c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port], ["http", "http"]);
        assert.deepStrictEqual(one(run.resources, T.service, "stateful-flask").inputs.spec.ports, [
            { name: "http", port: 80, targetPort: "http", protocol: "TCP" },
        ]);
    });

    it("rolls out without losing capacity", () => {
        assert.deepStrictEqual(deployment.inputs.spec.strategy, {
            type: "RollingUpdate",
            rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
        });
    });

    it("probes readiness and liveness over HTTP on the image's health route, and tells the image its port (PORT)", () => {
        const c = deployment.inputs.spec.template.spec.containers[0];
        assert.deepStrictEqual(c.readinessProbe.httpGet, { path: "/healthz", port: "http" });
        assert.deepStrictEqual(c.livenessProbe.httpGet, { path: "/healthz", port: "http" });
        assert.deepStrictEqual(c.ports, [{ name: "http", containerPort: 5000, protocol: "TCP" }]);
        assert.deepStrictEqual(c.env, [{ name: "PORT", value: "5000" }]);
        // The migration Job serves nothing.
        assert.strictEqual(all(resources, T.job)[0].inputs.spec.template.spec.containers[0].env, undefined);
        assert.deepStrictEqual(c.resources, {
            requests: { cpu: "100m", memory: "128Mi" },
            limits: { cpu: "500m", memory: "256Mi" },
        });
        assert.deepStrictEqual(c.lifecycle.preStop.exec.command, ["/bin/sh", "-c", "sleep 5"]);
    });

    it("runs as non-root on a read-only root filesystem, the migration Job too, with no capabilities", () => {
        const pod = deployment.inputs.spec.template.spec;
        assert.strictEqual(pod.securityContext.runAsNonRoot, true);
        assert.strictEqual(pod.securityContext.runAsUser, 10001);
        const hardened = {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
        };
        assert.deepStrictEqual(pod.containers[0].securityContext, hardened);
        assert.deepStrictEqual(
            all(resources, T.job)[0].inputs.spec.template.spec.containers[0].securityContext,
            hardened,
        );
    });

    it("gets DATABASE_URL and POSTGRES_* from a Secret, with the password kept secret", () => {
        const c = deployment.inputs.spec.template.spec.containers[0];
        assert.deepStrictEqual(c.envFrom, [{ secretRef: { name: "stateful-flask-database" } }]);
        const secret = one(resources, T.secret, "stateful-flask-database");
        assert.strictEqual(secret.inputs.metadata.namespace, "stateful-namespace");
        const data = secret.inputs.stringData;
        assert.strictEqual(data.POSTGRES_HOST, "postgres.postgres.svc.cluster.local");
        assert.strictEqual(data.POSTGRES_PORT, "5432");
        assert.strictEqual(data.POSTGRES_DB, "stateful-flask-db");
        assert.strictEqual(data.POSTGRES_USER, "stateful-flask-user");
        assert.match(
            data.DATABASE_URL,
            /^postgresql:\/\/stateful-flask-user:[A-Za-z0-9]+@postgres\.postgres\.svc\.cluster\.local:5432\/stateful-flask-db\?sslmode=verify-full&sslrootcert=\/etc\/postgres-ca\/ca\.crt$/,
        );
        assert.ok(isSecretInput(secret, "stringData.POSTGRES_PASSWORD"), `secret inputs: ${secret.secretInputs}`);
        assert.ok(isSecretInput(secret, "stringData.DATABASE_URL"));
    });

    it("runs migrations once per release in a Job the Deployment waits for", () => {
        const [job] = all(resources, T.job);
        assert.strictEqual(all(resources, T.job).length, 1);
        const image = "registry.digitalocean.com/drexii/stateful-flask:v1.0.0";
        assert.strictEqual(
            job.inputs.metadata.name,
            migrationJobName("stateful-flask", image, ["flask", "release-migrate"]),
        );
        assert.match(job.inputs.metadata.name, /^stateful-flask-migrate-[0-9a-f]{10}$/);
        const c = job.inputs.spec.template.spec.containers[0];
        assert.deepStrictEqual(c.command, ["flask", "release-migrate"]);
        assert.strictEqual(c.image, image);
        assert.strictEqual(job.inputs.spec.template.spec.restartPolicy, "Never");
        assert.ok(
            deployment.dependencies.includes(job.urn),
            "the Deployment rolls out only after the migration Job completed",
        );
        assert.strictEqual(job.deleteBeforeReplace, true);
    });

    it("starts the migration Job only once the Postgres StatefulSet is ready (no attempt against a database still booting)", () => {
        const [job] = all(resources, T.job);
        const sts = one(resources, T.statefulSet, "postgres");
        assert.ok(job.dependencies.includes(sts.urn), `the Job's dependencies: ${job.dependencies}`);
    });

    it("keeps migration pods out of the API Service", () => {
        const [job] = all(resources, T.job);
        const service = one(resources, T.service, "stateful-flask");
        assert.ok(!selects(service.inputs.spec.selector, job.inputs.spec.template.metadata.labels));
        assert.ok(selects(service.inputs.spec.selector, deployment.inputs.spec.template.metadata.labels));
    });

    it("exposes a ClusterIP Service on port 80 to the http port", () => {
        const service = one(resources, T.service, "stateful-flask");
        assert.strictEqual(service.inputs.spec.type, "ClusterIP");
        assert.deepStrictEqual(service.inputs.spec.ports, [
            { name: "http", port: 80, targetPort: "http", protocol: "TCP" },
        ]);
    });

    it("names a new Job for a new image and keeps the name for the same one", () => {
        const a = migrationJobName("stateful-flask", "app:v1", ["flask", "release-migrate"]);
        assert.strictEqual(a, migrationJobName("stateful-flask", "app:v1", ["flask", "release-migrate"]));
        assert.notStrictEqual(a, migrationJobName("stateful-flask", "app:v2", ["flask", "release-migrate"]));
        assert.ok(a.length <= 63);
    });
});
