import * as assert from "assert";
import { evaluate, isSecretInput, ProgramResource } from "./helpers/program";
import { all, one, selects, T } from "./helpers/resources";

describe("Postgres component (dev stack)", () => {
    let resources: ProgramResource[];
    let sts: ProgramResource;
    before(async () => {
        resources = (await evaluate("dev")).resources;
        sts = one(resources, T.statefulSet, "postgres");
    });

    it("keeps the StatefulSet and claim template names that carry the data", () => {
        assert.strictEqual(sts.inputs.metadata.name, "postgres");
        assert.strictEqual(sts.inputs.metadata.namespace, "postgres");
        const [vct] = sts.inputs.spec.volumeClaimTemplates;
        assert.strictEqual(sts.inputs.spec.volumeClaimTemplates.length, 1);
        assert.strictEqual(vct.metadata.name, "postgredb-volume");
    });

    it("claims one ReadWriteOnce do-block-storage volume of 5Gi per pod, exactly the tutorial's template", () => {
        const [vct] = sts.inputs.spec.volumeClaimTemplates;
        assert.deepStrictEqual(vct, {
            metadata: { name: "postgredb-volume" },
            spec: { accessModes: ["ReadWriteOnce"], storageClassName: "do-block-storage", resources: { requests: { storage: "5Gi" } } },
        });
    });

    it("points serviceName at a headless Service that selects exactly the Postgres pods", () => {
        const headless = one(resources, T.service, sts.inputs.spec.serviceName);
        assert.strictEqual(sts.inputs.spec.serviceName, "postgres-headless");
        assert.strictEqual(headless.inputs.spec.clusterIP, "None");
        assert.strictEqual(headless.inputs.metadata.namespace, "postgres");
        const podLabels = sts.inputs.spec.template.metadata.labels;
        assert.ok(selects(headless.inputs.spec.selector, podLabels));
        assert.deepStrictEqual(headless.inputs.spec.selector, sts.inputs.spec.selector.matchLabels);
        assert.ok(selects(sts.inputs.spec.selector.matchLabels, podLabels));
    });

    it("keeps the tutorial's selector (app: postgres) so its StatefulSet can be adopted", () => {
        assert.deepStrictEqual(sts.inputs.spec.selector.matchLabels, { app: "postgres" });
    });

    it("sends the read-write Service only to the primary, ordinal 0", () => {
        const rw = one(resources, T.service, "postgres");
        assert.deepStrictEqual(rw.inputs.spec.selector, { app: "postgres", "statefulset.kubernetes.io/pod-name": "postgres-0" });
        assert.strictEqual(rw.inputs.spec.ports[0].port, 5432);
        const ro = one(resources, T.service, "postgres-ro");
        assert.deepStrictEqual(ro.inputs.spec.selector, { app: "postgres" });
    });

    it("after a manual failover, points the read-write Service and the standbys at the new primary", async () => {
        const run = await evaluate("dev", { "stateful-flask:postgresReplicas": "3", "stateful-flask:apiReplicas": "3", "stateful-flask:postgresPrimaryOrdinal": "1" });
        const rw = one(run.resources, T.service, "postgres");
        assert.strictEqual(rw.inputs.spec.selector["statefulset.kubernetes.io/pod-name"], "postgres-1");
        const env = Object.fromEntries(one(run.resources, T.statefulSet).inputs.spec.template.spec.containers[0].env
            .map((e: any) => [e.name, e.value]));
        assert.strictEqual(env.PRIMARY_ORDINAL, "1");
        assert.strictEqual(env.PRIMARY_HOST, "postgres-1.postgres-headless.postgres.svc.cluster.local");
    });

    it("retains PVCs when scaled down or deleted", () => {
        assert.deepStrictEqual(sts.inputs.spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: "Retain", whenScaled: "Retain" });
    });

    it("protects the data-bearing resources and keeps the namespace on destroy", () => {
        assert.strictEqual(sts.protect, true);
        const ns = one(resources, T.namespace, "postgres");
        assert.strictEqual(ns.protect, true);
        assert.strictEqual(ns.retainOnDelete, true);
        assert.strictEqual(one(resources, T.secret, "postgres-credentials").protect, true);
        for (const pw of all(resources, T.randomPassword)) {
            assert.strictEqual(pw.protect, true, `${pw.name} must be protected: Postgres keeps the password it was initialised with`);
        }
    });

    it("puts PGDATA in a subdirectory of the volume mount", () => {
        const c = sts.inputs.spec.template.spec.containers[0];
        const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
        assert.strictEqual(env.PGDATA, "/var/lib/postgresql/data/pgdata");
        const mount = c.volumeMounts.find((m: any) => m.name === "postgredb-volume");
        assert.strictEqual(mount.mountPath, "/var/lib/postgresql/data");
        assert.strictEqual(env.PRIMARY_HOST, "postgres-0.postgres-headless.postgres.svc.cluster.local");
        assert.strictEqual(env.PRIMARY_ORDINAL, "0");
        assert.strictEqual(env.MAX_SLOT_WAL_KEEP_SIZE, "1GB");
        assert.strictEqual(env.REPLICATION_CIDR, "10.244.0.0/16");
        assert.deepStrictEqual(env.POSTGRES_PASSWORD, { secretKeyRef: { name: "postgres-credentials", key: "POSTGRES_PASSWORD" } });
        assert.deepStrictEqual(env.POD_NAME, { fieldRef: { fieldPath: "metadata.name" } });
    });

    it("runs a pinned image through the repository's entrypoint script", () => {
        const c = sts.inputs.spec.template.spec.containers[0];
        assert.strictEqual(c.image, "postgres:15.20-bookworm");
        assert.deepStrictEqual(c.command, ["/scripts/entrypoint.sh"]);
        const cm = one(resources, T.configMap, "postgres-scripts");
        assert.ok(cm.inputs.data["entrypoint.sh"].startsWith("#!"), "entrypoint.sh is loaded from scripts/postgres");
        const scriptsVolume = sts.inputs.spec.template.spec.volumes.find((v: any) => v.name === "scripts");
        assert.deepStrictEqual(scriptsVolume.configMap, { name: "postgres-scripts", defaultMode: 0o555 });
        assert.match(sts.inputs.spec.template.metadata.annotations["stateful-flask/scripts-sha256"], /^[0-9a-f]{64}$/);
    });

    it("probes with pg_isready and sets requests and limits", () => {
        const c = sts.inputs.spec.template.spec.containers[0];
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
            assert.match(c[probe].exec.command.join(" "), /pg_isready -h 127\.0\.0\.1 -p 5432/, probe);
        }
        assert.strictEqual(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold, 3600);
        assert.deepStrictEqual(c.resources, { requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" } });
    });

    it("runs as the non-root postgres user with fsGroup, and shuts down fast within the grace period", () => {
        const pod = sts.inputs.spec.template.spec;
        assert.strictEqual(pod.securityContext.runAsNonRoot, true);
        assert.strictEqual(pod.securityContext.runAsUser, 999);
        assert.strictEqual(pod.securityContext.fsGroup, 999);
        assert.strictEqual(pod.containers[0].securityContext.allowPrivilegeEscalation, false);
        assert.strictEqual(pod.terminationGracePeriodSeconds, 120);
        assert.match(pod.containers[0].lifecycle.preStop.exec.command.join(" "), /pg_ctl stop .* -m fast -w -t 100/);
    });

    it("keeps the generated passwords secret in the Secret", () => {
        const secret = one(resources, T.secret, "postgres-credentials");
        assert.ok(isSecretInput(secret, "stringData.POSTGRES_PASSWORD"), `secret inputs: ${secret.secretInputs}`);
        assert.ok(isSecretInput(secret, "stringData.REPLICATION_PASSWORD"));
        assert.ok(!isSecretInput(secret, "metadata.name"));
        assert.match(secret.inputs.stringData.POSTGRES_PASSWORD, /^[A-Za-z0-9]{20,}$/);
        for (const pw of all(resources, T.randomPassword)) {
            assert.strictEqual(pw.inputs.special, false);
            assert.strictEqual(pw.inputs.length, 32);
        }
    });

    it("takes passwords from stack secrets when set, generating none, and escapes them in DATABASE_URL", async () => {
        const run = await evaluate("dev", { "stateful-flask:postgresPassword": "p@ss/w:rd", "stateful-flask:replicationPassword": "r3pl" });
        assert.deepStrictEqual(all(run.resources, T.randomPassword), []);
        const secret = one(run.resources, T.secret, "postgres-credentials");
        assert.strictEqual(secret.inputs.stringData.POSTGRES_PASSWORD, "p@ss/w:rd");
        assert.strictEqual(secret.inputs.stringData.REPLICATION_PASSWORD, "r3pl");
        assert.ok(isSecretInput(secret, "stringData.POSTGRES_PASSWORD"));
        const apiSecret = one(run.resources, T.secret, "stateful-flask-database");
        assert.strictEqual(apiSecret.inputs.stringData.DATABASE_URL,
            "postgresql://stateful-flask-user:p%40ss%2Fw%3Ard@postgres.postgres.svc.cluster.local:5432/stateful-flask-db");
        assert.ok(isSecretInput(apiSecret, "stringData.DATABASE_URL"));
    });

    it("has a PodDisruptionBudget that evicts at most one database pod at a time", () => {
        const pdb = one(resources, T.pdb, "postgres");
        assert.deepStrictEqual(pdb.inputs.spec, { maxUnavailable: 1, selector: { matchLabels: { app: "postgres" } } });
    });

    it("lets only the API's pods, the migration Job and the other Postgres pods reach 5432", () => {
        const np = one(resources, T.networkPolicy, "postgres");
        assert.deepStrictEqual(np.inputs.spec.podSelector, { matchLabels: { app: "postgres" } });
        assert.deepStrictEqual(np.inputs.spec.policyTypes, ["Ingress"]);
        const [rule] = np.inputs.spec.ingress;
        assert.deepStrictEqual(rule.ports, [{ protocol: "TCP", port: 5432 }]);
        assert.deepStrictEqual(rule.from, [
            { podSelector: { matchLabels: { app: "postgres" } } },
            {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "stateful-namespace" } },
                podSelector: { matchLabels: { "postgres-client": "true" } },
            },
        ]);
        const api = one(resources, T.deployment, "stateful-flask");
        assert.ok(selects(rule.from[1].podSelector.matchLabels, api.inputs.spec.template.metadata.labels));
        const job = all(resources, T.job)[0];
        assert.ok(selects(rule.from[1].podSelector.matchLabels, job.inputs.spec.template.metadata.labels));
    });

    it("resizes storage through one PVC patch per ordinal, never through the immutable template", () => {
        assert.deepStrictEqual(sts.ignoreChanges, ["spec.volumeClaimTemplates[0].spec.resources"]);
        const patches = all(resources, T.pvcPatch);
        assert.deepStrictEqual(patches.map(p => p.inputs.metadata.name), ["postgredb-volume-postgres-0"]);
        assert.deepStrictEqual(patches[0].inputs.spec, { resources: { requests: { storage: "5Gi" } } });
        assert.strictEqual(patches[0].retainOnDelete, true);
        assert.deepStrictEqual(patches[0].inputs.metadata.annotations, { "pulumi.com/patchForce": "true", "pulumi.com/skipAwait": "true" });
        assert.ok(patches[0].dependencies.includes(sts.urn));
    });
});
