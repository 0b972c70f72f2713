import * as assert from "node:assert";
import { PATRONI_RULES } from "../components/patroni-rbac";
import { validateTiming } from "../components/postgres";
import { ConfigError } from "../components/validate";
import { evaluate, isSecretInput, type ProgramResource } from "./helpers/program";
import { all, envOf, one, selects, T } from "./helpers/resources";

const MEMBERS = { app: "postgres", "app.kubernetes.io/instance": "postgres" };

/** The passwords the Postgres component generates (the stack has others, e.g. the backup passphrase). */
const postgresPasswords = (resources: ProgramResource[]) =>
    all(resources, T.randomPassword).filter((r) => r.parent === one(resources, "stateful-flask:database:Postgres").urn);

describe("Postgres component (dev stack): Patroni in the StatefulSet", () => {
    let resources: ProgramResource[];
    let sts: ProgramResource;
    let container: any;
    before(async () => {
        resources = (await evaluate("dev")).resources;
        sts = one(resources, T.statefulSet, "postgres");
        container = sts.inputs.spec.template.spec.containers[0];
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
            spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: "do-block-storage",
                resources: { requests: { storage: "5Gi" } },
            },
        });
    });

    it("points serviceName at a headless Service that selects exactly the Postgres pods", () => {
        const headless = one(resources, T.service, sts.inputs.spec.serviceName);
        assert.strictEqual(sts.inputs.spec.serviceName, "postgres-headless");
        assert.strictEqual(headless.inputs.spec.clusterIP, "None");
        assert.strictEqual(headless.inputs.spec.publishNotReadyAddresses, true);
        const podLabels = sts.inputs.spec.template.metadata.labels;
        assert.ok(selects(headless.inputs.spec.selector, podLabels));
        assert.deepStrictEqual(headless.inputs.spec.selector, sts.inputs.spec.selector.matchLabels);
    });

    it("keeps the tutorial's selector (app: postgres) and the immutable OrderedReady policy, so the StatefulSet is updated, not replaced", () => {
        assert.deepStrictEqual(sts.inputs.spec.selector.matchLabels, { app: "postgres" });
        assert.strictEqual(sts.inputs.spec.podManagementPolicy, "OrderedReady");
        assert.deepStrictEqual(sts.inputs.spec.updateStrategy, { type: "RollingUpdate" });
    });

    it("sends the read-write Service to the pod Patroni labels as leader, and reads to the leader while it runs alone", () => {
        const rw = one(resources, T.service, "postgres");
        assert.deepStrictEqual(rw.inputs.spec.selector, { ...MEMBERS, role: "master" });
        assert.deepStrictEqual(rw.inputs.spec.ports, [
            { name: "postgresql", port: 5432, targetPort: "postgresql", protocol: "TCP" },
        ]);
        const ro = one(resources, T.service, "postgres-ro");
        assert.deepStrictEqual(ro.inputs.spec.selector, MEMBERS);
        assert.ok(selects(rw.inputs.spec.selector, { ...sts.inputs.spec.template.metadata.labels, role: "master" }));
    });

    it("sends reads to the replicas once there are replicas", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:postgresReplicas": "3",
            "stateful-flask:apiReplicas": "3",
        });
        assert.deepStrictEqual(one(run.resources, T.service, "postgres-ro").inputs.spec.selector, {
            ...MEMBERS,
            role: "replica",
        });
        assert.strictEqual(one(run.resources, T.statefulSet).inputs.spec.replicas, 3);
        assert.deepStrictEqual(
            run.exports.postgresPods,
            [0, 1, 2].map((i) => `postgres-${i}.postgres-headless.postgres.svc.cluster.local`),
        );
    });

    it("retains PVCs when scaled down or deleted", () => {
        assert.deepStrictEqual(sts.inputs.spec.persistentVolumeClaimRetentionPolicy, {
            whenDeleted: "Retain",
            whenScaled: "Retain",
        });
    });

    it("protects the data-bearing resources and keeps the namespace on destroy", () => {
        assert.strictEqual(sts.protect, true);
        const ns = one(resources, T.namespace, "postgres");
        assert.strictEqual(ns.protect, true);
        assert.strictEqual(ns.retainOnDelete, true);
        assert.strictEqual(one(resources, T.secret, "postgres-credentials").protect, true);
        const passwords = postgresPasswords(resources);
        assert.deepStrictEqual(passwords.map((p) => p.name).sort(), [
            "postgres-password",
            "postgres-patroni-api-password",
            "postgres-replication-password",
            "postgres-superuser-password",
            "postgres-tls-seed",
        ]);
        for (const pw of passwords) {
            assert.strictEqual(
                pw.protect,
                true,
                `${pw.name} must be protected: Postgres keeps the password it was initialised with`,
            );
        }
    });

    it("runs the project's image with its own entrypoint (Patroni), no command override", () => {
        assert.strictEqual(container.image, "registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1");
        assert.strictEqual(container.command, undefined);
        assert.deepStrictEqual(
            all(resources, T.configMap).filter((c) => c.inputs.metadata.namespace === "postgres"),
            [],
            "the pod's scripts ship in the image, not in a ConfigMap",
        );
        assert.deepStrictEqual(container.ports, [
            { name: "postgresql", containerPort: 5432, protocol: "TCP" },
            { name: "patroni", containerPort: 8008, protocol: "TCP" },
        ]);
    });

    it("gives Patroni its member identity, the DCS labels and the cluster settings through the environment", () => {
        const env = envOf(container);
        assert.deepStrictEqual(env.POD_NAME, { fieldRef: { fieldPath: "metadata.name" } });
        assert.deepStrictEqual(env.POD_NAMESPACE, { fieldRef: { fieldPath: "metadata.namespace" } });
        assert.deepStrictEqual(env.POD_IP, { fieldRef: { fieldPath: "status.podIP" } });
        assert.strictEqual(env.PGDATA, "/var/lib/postgresql/data/pgdata");
        assert.strictEqual(
            container.volumeMounts.find((m: any) => m.name === "postgredb-volume").mountPath,
            "/var/lib/postgresql/data",
        );
        assert.strictEqual(env.SCOPE, "postgres");
        assert.deepStrictEqual(JSON.parse(env.KUBERNETES_LABELS), { app: "postgres" });
        assert.strictEqual(env.SCOPE_LABEL, "app.kubernetes.io/instance");
        assert.strictEqual(sts.inputs.spec.template.metadata.labels["app.kubernetes.io/instance"], "postgres");
        assert.strictEqual(env.POD_CIDR, "10.244.0.0/16");
        assert.strictEqual(env.SYNCHRONOUS_MODE, "on");
        assert.deepStrictEqual([env.TTL, env.LOOP_WAIT, env.RETRY_TIMEOUT], ["7", "1", "3"]);
        assert.strictEqual(env.MAX_SLOT_WAL_KEEP_SIZE, "1GB");
        assert.strictEqual(env.APP_USER, "stateful-flask-user");
        assert.strictEqual(env.APP_DATABASE, "stateful-flask-db");
        assert.strictEqual(env.REPLICATION_USER, "replicator");
        const ref = (key: string) => ({ secretKeyRef: { name: "postgres-credentials", key } });
        assert.deepStrictEqual(env.SUPERUSER_PASSWORD, ref("SUPERUSER_PASSWORD"));
        assert.deepStrictEqual(env.REPLICATION_PASSWORD, ref("REPLICATION_PASSWORD"));
        assert.deepStrictEqual(env.APP_PASSWORD, ref("POSTGRES_PASSWORD"));
        assert.deepStrictEqual(env.API_PASSWORD, ref("PATRONI_API_PASSWORD"));
    });

    it("passes the synchronous replication setting through", async () => {
        const off = await evaluate("dev", { "stateful-flask:postgresSynchronousMode": "off" });
        assert.strictEqual(
            envOf(one(off.resources, T.statefulSet).inputs.spec.template.spec.containers[0]).SYNCHRONOUS_MODE,
            "off",
        );
        const strict = await evaluate("dev", {
            "stateful-flask:postgresSynchronousMode": "strict",
            "stateful-flask:postgresReplicas": "3",
            "stateful-flask:apiReplicas": "3",
        });
        assert.strictEqual(
            envOf(one(strict.resources, T.statefulSet).inputs.spec.template.spec.containers[0]).SYNCHRONOUS_MODE,
            "strict",
        );
    });

    it("probes Patroni's REST API, hands leadership over in preStop, and allows 120 s to stop", () => {
        assert.deepStrictEqual(container.readinessProbe, {
            httpGet: { path: "/readiness", port: "patroni" },
            periodSeconds: 5,
            failureThreshold: 3,
            timeoutSeconds: 5,
        });
        assert.deepStrictEqual(container.livenessProbe, {
            httpGet: { path: "/liveness", port: "patroni" },
            periodSeconds: 10,
            failureThreshold: 6,
            timeoutSeconds: 5,
        });
        assert.strictEqual(container.startupProbe, undefined);
        assert.deepStrictEqual(container.lifecycle.preStop.exec.command, [
            "/usr/bin/python3",
            "/usr/local/lib/stateful-flask-postgres/pod.py",
            "pre-stop",
        ]);
        assert.strictEqual(sts.inputs.spec.template.spec.terminationGracePeriodSeconds, 120);
        assert.deepStrictEqual(container.resources, {
            requests: { cpu: "250m", memory: "512Mi" },
            limits: { cpu: "1", memory: "1Gi" },
        });
    });

    it("runs as the non-root postgres user with fsGroup, a read-only root filesystem and no service links", () => {
        const pod = sts.inputs.spec.template.spec;
        assert.deepStrictEqual(pod.securityContext, {
            runAsNonRoot: true,
            runAsUser: 999,
            runAsGroup: 999,
            fsGroup: 999,
            fsGroupChangePolicy: "OnRootMismatch",
            seccompProfile: { type: "RuntimeDefault" },
        });
        assert.deepStrictEqual(container.securityContext, {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
        });
        assert.strictEqual(pod.enableServiceLinks, false);
        assert.deepStrictEqual(pod.volumes, [
            { name: "run", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
            { name: "tls", secret: { secretName: "postgres-tls", defaultMode: 0o440 } },
        ]);
    });

    it("keeps the run directory (Patroni's config with every password, pgpass, pgBackRest's key and passphrase) and /tmp in memory", () => {
        const mounts = Object.fromEntries(container.volumeMounts.map((m: any) => [m.mountPath, m.name]));
        assert.strictEqual(mounts["/var/run/postgresql"], "run");
        assert.strictEqual(mounts["/tmp"], "tmp");
        // The pod reads RUN_DIR's default, which is that mount (images/postgres/pod/README.md).
        assert.strictEqual(envOf(container).RUN_DIR, undefined);
        const volumes = Object.fromEntries(sts.inputs.spec.template.spec.volumes.map((v: any) => [v.name, v]));
        assert.deepStrictEqual(volumes.run.emptyDir, { medium: "Memory", sizeLimit: "64Mi" });
        assert.deepStrictEqual(volumes.tmp.emptyDir, { medium: "Memory", sizeLimit: "64Mi" });
    });

    it("puts no emptyDir of any workload on a node's disk, with every option that adds volumes on", async () => {
        const run = await evaluate("local", {
            "stateful-flask:backupMode": "existing",
            "stateful-flask:backupBucket": "backups",
            "stateful-flask:backupRegion": "us-east-1",
            "stateful-flask:backupEndpoint": "s3.example.com",
            "stateful-flask:backupAccessKeyId": "K",
            "stateful-flask:backupSecretAccessKey": "S",
        });
        const templates = run.resources
            .filter((r) => [T.statefulSet, T.deployment, T.job].includes(r.type as any))
            .map((r) => [r.name, r.inputs.spec.template.spec] as const);
        assert.deepStrictEqual(templates.map(([name]) => name).sort(), [
            "api-deployment",
            "api-migrate",
            "postgres-statefulset",
        ]);
        const emptyDirs = templates.flatMap(([name, spec]) =>
            (spec.volumes ?? []).filter((v: any) => v.emptyDir).map((v: any) => [name, v.name, v.emptyDir.medium]),
        );
        assert.deepStrictEqual(emptyDirs, [
            ["postgres-statefulset", "run", "Memory"],
            ["postgres-statefulset", "tmp", "Memory"],
        ]);
    });

    describe("members on separate nodes (pod anti-affinity)", () => {
        const apart = { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { app: "postgres" } } };

        /** Evaluates with overrides and returns the StatefulSet's anti-affinity, the postgresSpread output and the warnings logged. */
        async function spreadOf(stack: "dev" | "local", overrides: Record<string, string>) {
            const warnings: string[] = [];
            const warn = console.warn;
            console.warn = (...args: unknown[]) => {
                warnings.push(args.join(" "));
            };
            try {
                const run = await evaluate(stack, overrides);
                const affinity = one(run.resources, T.statefulSet).inputs.spec.template.spec.affinity.podAntiAffinity;
                return {
                    affinity,
                    note: run.exports.postgresSpread as string,
                    warnings: warnings.filter((w) => w.includes("postgresSpread")),
                };
            } finally {
                console.warn = warn;
            }
        }

        it("requires them when the DOKS pool has a node for each member (3 nodes, 1 and 3 members)", async () => {
            const one3 = { "stateful-flask:postgresReplicas": "3", "stateful-flask:apiReplicas": "3" };
            for (const overrides of [{}, one3]) {
                const s = await spreadOf("dev", overrides);
                assert.deepStrictEqual(s.affinity, { requiredDuringSchedulingIgnoredDuringExecution: [apart] });
                assert.match(
                    s.note,
                    /^required: each of the [13] members? on a node of its own \(the pool keeps at least 3\)/,
                );
                assert.deepStrictEqual(s.warnings, []);
            }
        });

        it("only prefers them, and warns, when the pool may have fewer nodes than members", async () => {
            const s = await spreadOf("dev", {
                "stateful-flask:postgresReplicas": "3",
                "stateful-flask:apiReplicas": "3",
                "stateful-flask:nodeCount": "2",
            });
            assert.deepStrictEqual(s.affinity, {
                preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: apart }],
            });
            assert.match(s.note, /^preferred: the node pool has 2 nodes \(nodeCount\), fewer than the 3 members/);
            assert.deepStrictEqual(s.warnings, [`warning: [runtime] postgresSpread ${s.note}`]);
        });

        it("only prefers them on an existing cluster, warning once there is more than one member", async () => {
            const single = await spreadOf("local", {});
            assert.deepStrictEqual(single.affinity, {
                preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: apart }],
            });
            assert.match(single.note, /^preferred: this program does not size an existing cluster's nodes/);
            assert.deepStrictEqual(single.warnings, [], "one member has nothing to spread");
            const three = await spreadOf("local", {
                "stateful-flask:postgresReplicas": "3",
                "stateful-flask:apiReplicas": "3",
            });
            assert.strictEqual(three.warnings.length, 1);
            assert.match(
                three.warnings[0],
                /postgresSpread preferred: this program does not size an existing cluster's nodes \(the local cluster has one\), so two of the 3 members may share a node/,
            );
        });
    });

    it("gives the pods a ServiceAccount whose Role allows exactly what Patroni does, nothing cluster-wide", () => {
        const pod = sts.inputs.spec.template.spec;
        assert.strictEqual(pod.serviceAccountName, "postgres");
        assert.strictEqual(pod.automountServiceAccountToken, true);
        assert.strictEqual(one(resources, T.serviceAccount, "postgres").inputs.metadata.namespace, "postgres");
        const role = one(resources, T.role, "postgres");
        assert.deepStrictEqual(role.inputs.rules, [
            {
                apiGroups: [""],
                resources: ["configmaps"],
                verbs: ["create", "get", "list", "patch", "update", "watch", "delete", "deletecollection"],
            },
            { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch", "update", "watch"] },
            { apiGroups: [""], resources: ["events"], verbs: ["create"] },
            { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get"] },
        ]);
        assert.deepStrictEqual(role.inputs.rules, PATRONI_RULES);
        const binding = one(resources, T.roleBinding, "postgres");
        assert.deepStrictEqual(binding.inputs.roleRef, {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "Role",
            name: "postgres",
        });
        assert.deepStrictEqual(binding.inputs.subjects, [
            { kind: "ServiceAccount", name: "postgres", namespace: "postgres" },
        ]);
        assert.deepStrictEqual(all(resources, T.clusterRole), []);
        assert.deepStrictEqual(all(resources, T.clusterRoleBinding), []);
        assert.ok(
            sts.dependencies.includes(binding.urn),
            `the StatefulSet waits for the RoleBinding; dependencies: ${sts.dependencies}`,
        );
    });

    it("keeps every generated password secret in the Secret", () => {
        const secret = one(resources, T.secret, "postgres-credentials");
        for (const key of ["POSTGRES_PASSWORD", "REPLICATION_PASSWORD", "SUPERUSER_PASSWORD", "PATRONI_API_PASSWORD"]) {
            assert.ok(
                isSecretInput(secret, `stringData.${key}`),
                `${key} secret; secret inputs: ${secret.secretInputs}`,
            );
            assert.match(secret.inputs.stringData[key], /^[A-Za-z0-9]{20,}$/);
        }
        assert.strictEqual(secret.inputs.stringData.REPLICATION_USER, "replicator");
        for (const pw of postgresPasswords(resources)) {
            assert.strictEqual(pw.inputs.special, false);
            assert.strictEqual(pw.inputs.length, 32);
        }
    });

    it("takes passwords from stack secrets when set, generating none, and escapes them in DATABASE_URL", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:postgresPassword": "p@ss/w:rd",
            "stateful-flask:replicationPassword": "r3pl",
            "stateful-flask:postgresSuperuserPassword": "su",
            "stateful-flask:patroniApiPassword": "api",
            "stateful-flask:postgresTlsSeed": "a-tls-seed-of-enough-length",
            "stateful-flask:backupCipherPassphrase": "cipher",
        });
        assert.deepStrictEqual(postgresPasswords(run.resources), []);
        const secret = one(run.resources, T.secret, "postgres-credentials");
        assert.deepStrictEqual(
            [
                secret.inputs.stringData.POSTGRES_PASSWORD,
                secret.inputs.stringData.REPLICATION_PASSWORD,
                secret.inputs.stringData.SUPERUSER_PASSWORD,
                secret.inputs.stringData.PATRONI_API_PASSWORD,
            ],
            ["p@ss/w:rd", "r3pl", "su", "api"],
        );
        assert.ok(isSecretInput(secret, "stringData.SUPERUSER_PASSWORD"));
        const apiSecret = one(run.resources, T.secret, "stateful-flask-database");
        assert.strictEqual(
            apiSecret.inputs.stringData.DATABASE_URL,
            "postgresql://stateful-flask-user:p%40ss%2Fw%3Ard@postgres.postgres.svc.cluster.local:5432/stateful-flask-db?sslmode=verify-full&sslrootcert=/etc/postgres-ca/ca.crt",
        );
        assert.ok(isSecretInput(apiSecret, "stringData.DATABASE_URL"));
    });

    it("has a PodDisruptionBudget that evicts at most one database pod at a time", () => {
        const pdb = one(resources, T.pdb, "postgres");
        assert.deepStrictEqual(pdb.inputs.spec, { maxUnavailable: 1, selector: { matchLabels: { app: "postgres" } } });
    });

    it("lets the API's pods, the migration Job and the members reach 5432, and only the members reach Patroni's 8008", () => {
        const np = one(resources, T.networkPolicy, "postgres");
        assert.deepStrictEqual(np.inputs.spec.podSelector, { matchLabels: { app: "postgres" } });
        assert.deepStrictEqual(np.inputs.spec.policyTypes, ["Ingress"]);
        const [sql, rest] = np.inputs.spec.ingress;
        assert.deepStrictEqual(sql.ports, [{ protocol: "TCP", port: 5432 }]);
        assert.deepStrictEqual(sql.from, [
            { podSelector: { matchLabels: { app: "postgres" } } },
            {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "stateful-namespace" } },
                podSelector: { matchLabels: { "postgres-client": "true" } },
            },
        ]);
        assert.deepStrictEqual(rest, {
            from: [{ podSelector: { matchLabels: { app: "postgres" } } }],
            ports: [{ protocol: "TCP", port: 8008 }],
        });
        const api = one(resources, T.deployment, "stateful-flask");
        assert.ok(selects(sql.from[1].podSelector.matchLabels, api.inputs.spec.template.metadata.labels));
        const job = all(resources, T.job)[0];
        assert.ok(selects(sql.from[1].podSelector.matchLabels, job.inputs.spec.template.metadata.labels));
    });

    it("resizes storage through one PVC patch per ordinal, never through the immutable template", () => {
        assert.deepStrictEqual(sts.ignoreChanges, ["spec.volumeClaimTemplates[0].spec.resources"]);
        const patches = all(resources, T.pvcPatch);
        assert.deepStrictEqual(
            patches.map((p) => p.inputs.metadata.name),
            ["postgredb-volume-postgres-0"],
        );
        assert.deepStrictEqual(patches[0].inputs.spec, { resources: { requests: { storage: "5Gi" } } });
        assert.strictEqual(patches[0].retainOnDelete, true);
        assert.deepStrictEqual(patches[0].inputs.metadata.annotations, {
            "pulumi.com/patchForce": "true",
            "pulumi.com/skipAwait": "true",
        });
        assert.ok(patches[0].dependencies.includes(sts.urn));
    });

    it("pulls the project's image from DOCR with read-only credentials in the Postgres namespace", async () => {
        const pod = sts.inputs.spec.template.spec;
        assert.deepStrictEqual(pod.imagePullSecrets, [{ name: "docr-drexii" }]);
        const pull = all(resources, T.secret).find(
            (r) => r.inputs.metadata.name === "docr-drexii" && r.inputs.metadata.namespace === "postgres",
        );
        assert.ok(pull, "a docr-drexii Secret in the postgres namespace");
        assert.strictEqual(pull!.inputs.type, "kubernetes.io/dockerconfigjson");
        assert.ok(sts.dependencies.includes(pull!.urn), "the StatefulSet waits for its pull Secret");
        const local = await evaluate("local");
        assert.strictEqual(
            one(local.resources, T.statefulSet).inputs.spec.template.spec.imagePullSecrets,
            undefined,
            "the local stack imports its images into the node: no credentials",
        );
    });

    it("archives WAL and takes backups to the stack's Spaces bucket: pgBackRest's settings in the env, the key and passphrase in a Secret", async () => {
        const env = envOf(container);
        assert.strictEqual(env.BACKUP_S3_BUCKET, "stateful-flask-dev-pgbackrest");
        assert.strictEqual(env.BACKUP_S3_ENDPOINT, "fra1.digitaloceanspaces.com");
        assert.strictEqual(env.BACKUP_S3_REGION, "fra1");
        assert.strictEqual(env.BACKUP_S3_URI_STYLE, "host");
        assert.strictEqual(env.BACKUP_PATH, "/stateful-flask/dev");
        assert.strictEqual(env.BACKUP_SCHEDULE, "0 3 * * *");
        assert.strictEqual(env.BACKUP_RETENTION_FULL, "7");
        assert.strictEqual(env.ARCHIVE_TIMEOUT, "60");
        assert.strictEqual(env.RESTORE_FROM_PATH, undefined);
        for (const k of ["BACKUP_S3_KEY", "BACKUP_S3_KEY_SECRET", "BACKUP_CIPHER_PASS"]) {
            assert.deepStrictEqual(env[k], { secretKeyRef: { name: "postgres-backup", key: k } });
        }
        const secret = one(resources, T.secret, "postgres-backup");
        assert.strictEqual(secret.inputs.metadata.namespace, "postgres");
        for (const k of ["BACKUP_S3_KEY", "BACKUP_S3_KEY_SECRET", "BACKUP_CIPHER_PASS"]) {
            assert.ok(isSecretInput(secret, `stringData.${k}`), `${k} is kept secret`);
        }
        assert.ok(sts.dependencies.includes(secret.urn));
    });

    it("restores from a backup to a point in time when restoreFrom is set", async () => {
        // backupMode spaces: the source is in the stack's own bucket, which exists (backup-storage.spec.ts has the refusal).
        const run = await evaluate(
            "dev",
            {
                "stateful-flask:restoreFrom": "/stateful-flask/prod",
                "stateful-flask:restoreTargetTime": "2026-11-24T14:01:00Z",
            },
            false,
            {},
            [{ name: "stateful-flask-dev-pgbackrest", region: "fra1" }],
        );
        const env = envOf(one(run.resources, T.statefulSet).inputs.spec.template.spec.containers[0]);
        assert.strictEqual(env.RESTORE_FROM_PATH, "/stateful-flask/prod");
        assert.strictEqual(env.RESTORE_TARGET_TIME, "2026-11-24T14:01:00Z");
        assert.strictEqual(env.BACKUP_PATH, "/stateful-flask/dev", "the restored cluster archives to its own path");
    });

    it("has no backup in the local stack, and says so in the outputs and the pod's environment", async () => {
        const local = await evaluate("local");
        const env = envOf(one(local.resources, T.statefulSet).inputs.spec.template.spec.containers[0]);
        assert.strictEqual(env.BACKUP_S3_BUCKET, undefined);
        assert.deepStrictEqual(
            all(local.resources, T.secret).filter((r) => r.inputs.metadata.name === "postgres-backup"),
            [],
        );
        assert.match(local.exports.backups, /^OFF: this stack.s database has no backup/);
    });

    it("encrypts every connection: a server certificate for the Services and pod names, its CA to the API, plain TCP refused", async () => {
        const secret = one(resources, T.secret, "postgres-tls");
        assert.strictEqual(secret.inputs.type, "kubernetes.io/tls");
        assert.deepStrictEqual(Object.keys(secret.inputs.stringData).sort(), ["ca.crt", "tls.crt", "tls.key"]);
        assert.ok(isSecretInput(secret, "stringData.tls.key"), "the private key is kept secret");
        assert.match(secret.inputs.stringData["tls.crt"], /^-----BEGIN CERTIFICATE-----\n/);
        assert.match(secret.inputs.stringData["tls.key"], /^-----BEGIN PRIVATE KEY-----\n/);
        assert.strictEqual(envOf(container).TLS_DIR, "/etc/postgresql-tls");
        assert.deepStrictEqual(
            container.volumeMounts.find((m: any) => m.name === "tls"),
            { name: "tls", mountPath: "/etc/postgresql-tls", readOnly: true },
        );
        assert.match(sts.inputs.spec.template.metadata.annotations["stateful-flask/tls-sha256"], /^[0-9a-f]{64}$/);
        const ca = one(resources, T.configMap, "stateful-flask-postgres-ca");
        assert.strictEqual(ca.inputs.metadata.namespace, "stateful-namespace");
        assert.strictEqual(ca.inputs.data["ca.crt"], secret.inputs.stringData["ca.crt"]);
        const api = one(resources, T.deployment, "stateful-flask").inputs.spec.template.spec;
        assert.deepStrictEqual(api.containers[0].volumeMounts, [
            { name: "postgres-ca", mountPath: "/etc/postgres-ca", readOnly: true },
        ]);
        assert.deepStrictEqual(api.volumes, [
            { name: "postgres-ca", configMap: { name: "stateful-flask-postgres-ca" } },
        ]);
        const job = all(resources, T.job)[0].inputs.spec.template.spec;
        assert.deepStrictEqual(job.volumes, api.volumes);
        const db = one(resources, T.secret, "stateful-flask-database").inputs.stringData;
        assert.match(db.DATABASE_URL, /\?sslmode=verify-full&sslrootcert=\/etc\/postgres-ca\/ca\.crt$/);
        assert.deepStrictEqual([db.PGSSLMODE, db.PGSSLROOTCERT], ["verify-full", "/etc/postgres-ca/ca.crt"]);
    });

    it("derives the same certificate on every evaluation (nothing rolls), another one from another seed", async () => {
        const cert = (r: ProgramResource[]) => one(r, T.secret, "postgres-tls").inputs.stringData["tls.crt"];
        const a = await evaluate("dev", { "stateful-flask:postgresTlsSeed": "seed-number-one-0123456789" });
        const b = await evaluate("dev", { "stateful-flask:postgresTlsSeed": "seed-number-one-0123456789" });
        const c = await evaluate("dev", { "stateful-flask:postgresTlsSeed": "seed-number-two-0123456789" });
        assert.strictEqual(cert(a.resources), cert(b.resources));
        assert.notStrictEqual(cert(a.resources), cert(c.resources));
        assert.deepStrictEqual(
            all(a.resources, T.randomPassword).filter((p) => p.name === "postgres-tls-seed"),
            [],
        );
    });

    it("refuses a TLS seed shorter than 16 characters, naming the key and not the secret", async () => {
        await assert.rejects(
            evaluate("dev", { "stateful-flask:postgresTlsSeed": "short-seed" }),
            /postgresTlsSeed: "a secret of 10 characters" is not valid; expected at least 16 characters/,
        );
    });

    it("turns TLS off with postgresTls false: no certificate, no CA, a plain DATABASE_URL", async () => {
        const run = await evaluate("dev", { "stateful-flask:postgresTls": "false" });
        assert.deepStrictEqual(
            all(run.resources, T.secret).filter((r) => r.inputs.metadata.name === "postgres-tls"),
            [],
        );
        assert.strictEqual(
            envOf(one(run.resources, T.statefulSet).inputs.spec.template.spec.containers[0]).TLS_DIR,
            undefined,
        );
        assert.doesNotMatch(
            one(run.resources, T.secret, "stateful-flask-database").inputs.stringData.DATABASE_URL,
            /sslmode/,
        );
        assert.deepStrictEqual(all(run.resources, T.configMap), []);
    });

    it("refuses failover timings where a leader could lose its lock while it still retries the API", () => {
        assert.deepStrictEqual(validateTiming({ ttl: 7, loopWait: 1, retryTimeout: 3 }), {
            ttl: 7,
            loopWait: 1,
            retryTimeout: 3,
        });
        assert.throws(
            () => validateTiming({ ttl: 6, loopWait: 1, retryTimeout: 3 }),
            (e: unknown) =>
                e instanceof ConfigError &&
                e.message ===
                    "ttl: 6 is not valid; expected at least loopWait + 2 * retryTimeout = 7 (a leader must not lose its lock while it still retries the API)",
        );
        assert.throws(
            () => validateTiming({ ttl: 4, loopWait: 1, retryTimeout: 1 }),
            (e: unknown) =>
                e instanceof ConfigError && e.message === "ttl: 4 is not valid; expected an integer from 5 to 300",
        );
    });
});
