import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { validateCidr, validateInteger, validateName, validatePinnedImage, validateStorageSize } from "./validate";

// Names that carry data. PVCs are named <claim template>-<statefulset>-<ordinal> (postgredb-volume-postgres-0):
// renaming either one makes the StatefulSet ask for new, empty volumes and orphans the existing ones
// (pulumi-kubernetes #619). They match the tutorial's manifests so that its readers' volumes are found.
/** The StatefulSet's name. Part of every PVC name: never change it. */
export const STATEFULSET_NAME = "postgres";
/** The volumeClaimTemplate's name. Part of every PVC name: never change it. */
export const VOLUME_CLAIM_TEMPLATE = "postgredb-volume";
/** The headless Service that gives each pod its DNS name (postgres-0.postgres-headless...). */
export const HEADLESS_SERVICE = "postgres-headless";
/** The read-write Service; always the primary. The name the tutorial's API already uses. */
export const PRIMARY_SERVICE = "postgres";
/** The read-only Service. */
export const READ_ONLY_SERVICE = "postgres-ro";

const POSTGRES_PORT = 5432;
const DATA_MOUNT = "/var/lib/postgresql/data";
// A subdirectory of the mount: DigitalOcean volumes carry lost+found at their root and initdb refuses a
// non-empty directory.
const PGDATA = `${DATA_MOUNT}/pgdata`;
const SCRIPTS_DIR = path.join(__dirname, "..", "scripts", "postgres");
const POSTGRES_UID = 999; // the postgres user of the official Debian-based image

/** Container resources. */
export interface Resources {
    readonly requests: { readonly cpu: string; readonly memory: string };
    readonly limits: { readonly cpu: string; readonly memory: string };
}

/** Arguments of {@link Postgres}. */
export interface PostgresArgs {
    /** Namespace, created and owned by this component. @default "postgres" */
    readonly namespace?: string;
    /** Pods: one primary, the others streaming hot standbys. @default 1 */
    readonly replicas?: number;
    /**
     * The ordinal that is the primary. Changed only by the manual failover runbook (docs/replication.md), after
     * that standby was promoted; it must stay below `replicas`. @default 0
     */
    readonly primaryOrdinal?: number;
    /** PostgreSQL image, pinned; its major version must match the data directory. */
    readonly image: string;
    /** Size of each pod's volume. Raising it resizes the existing PVCs in place. @default "5Gi" */
    readonly storageSize?: string;
    /** StorageClass of the volumes (`do-block-storage-retain` keeps the disk if a PVC is deleted). @default "do-block-storage" */
    readonly storageClass?: string;
    /** Application database. @default "stateful-flask-db" */
    readonly database?: string;
    /** Application role, owner of the database. @default "stateful-flask-user" */
    readonly user?: string;
    /** Pod network allowed to open replication connections (pg_hba). @default "10.244.0.0/16" */
    readonly replicationCidr?: string;
    /** Namespaces whose pods labelled {@link Postgres.clientLabels} may connect (NetworkPolicy). @default [] */
    readonly clientNamespaces?: string[];
    /** The `app.kubernetes.io/part-of` label. @default "stateful-flask" */
    readonly partOf?: string;
    /** Protect the namespace, StatefulSet and credentials from `pulumi destroy` and replacement. @default true */
    readonly protect?: boolean;
    /** Postgres container resources. @default requests 250m/512Mi, limits 1 CPU/1Gi */
    readonly resources?: Resources;
}

/** Reads the pod scripts (the files tests run against real PostgreSQL) for the ConfigMap. */
export function loadScripts(dir = SCRIPTS_DIR): Record<string, string> {
    const files = fs.readdirSync(dir).filter(f => /\.(sh|sql)$/.test(f)).sort();
    if (!files.includes("entrypoint.sh")) {
        throw new Error(`${dir} has no entrypoint.sh; the Postgres pods cannot start without it`);
    }
    return Object.fromEntries(files.map(f => [f, fs.readFileSync(path.join(dir, f), "utf8")]));
}

/**
 * PostgreSQL as a StatefulSet: one volume per pod from a volumeClaimTemplate, a headless Service for stable
 * pod identities, a read-write Service on the primary and a read-only one, generated credentials in a Secret,
 * a PodDisruptionBudget and a NetworkPolicy. With more than one replica, one ordinal (0 unless failed over)
 * is the primary and the others clone it once and then stream from it (scripts/postgres/entrypoint.sh).
 */
export class Postgres extends pulumi.ComponentResource {
    public readonly namespace: k8s.core.v1.Namespace;
    public readonly credentials: k8s.core.v1.Secret;
    public readonly scripts: k8s.core.v1.ConfigMap;
    public readonly headlessService: k8s.core.v1.Service;
    public readonly primaryService: k8s.core.v1.Service;
    public readonly readOnlyService: k8s.core.v1.Service;
    public readonly statefulSet: k8s.apps.v1.StatefulSet;
    public readonly disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
    public readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
    /** One patch per ordinal that keeps each existing PVC at `storageSize` (the safe resize path). */
    public readonly volumeSizes: k8s.core.v1.PersistentVolumeClaimPatch[];

    /** Labels a client pod needs (together with a namespace in `clientNamespaces`) to reach port 5432. */
    public readonly clientLabels: Record<string, string> = { "postgres-client": "true" };
    public readonly namespaceName: string;
    public readonly database: string;
    public readonly user: string;
    public readonly port = POSTGRES_PORT;
    /** The application role's password (secret). */
    public readonly password: pulumi.Output<string>;
    /** DNS name of the read-write Service (the primary). */
    public readonly host: string;
    /** DNS name of the read-only Service. */
    public readonly readOnlyHost: string;
    /** DNS name of the headless Service; pods are <statefulset>-<ordinal>.<this>. */
    public readonly headlessHost: string;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:database:Postgres", name, {}, opts);

        const ns = validateName("postgresNamespace", args.namespace ?? "postgres");
        const replicas = validateInteger("postgresReplicas", args.replicas ?? 1, 1, 9);
        // Scaling down removes the highest ordinals first: the primary must never be one of them.
        const primaryOrdinal = validateInteger("postgresPrimaryOrdinal", args.primaryOrdinal ?? 0, 0, replicas - 1);
        const primaryPod = `${STATEFULSET_NAME}-${primaryOrdinal}`;
        const image = validatePinnedImage("postgresImage", args.image);
        const storageSize = validateStorageSize("postgresStorageSize", args.storageSize ?? "5Gi");
        const storageClass = validateName("storageClass", args.storageClass ?? "do-block-storage", 253);
        const replicationCidr = validateCidr("replicationCidr", args.replicationCidr ?? "10.244.0.0/16");
        this.database = validateName("postgresDatabase", args.database ?? "stateful-flask-db");
        this.user = validateName("postgresUser", args.user ?? "stateful-flask-user");
        const partOf = args.partOf ?? "stateful-flask";
        const protect = args.protect ?? true;
        const resources = args.resources ?? { requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" } };
        const scripts = loadScripts();

        this.namespaceName = ns;
        this.host = `${PRIMARY_SERVICE}.${ns}.svc.cluster.local`;
        this.readOnlyHost = `${READ_ONLY_SERVICE}.${ns}.svc.cluster.local`;
        this.headlessHost = `${HEADLESS_SERVICE}.${ns}.svc.cluster.local`;

        // The selector is immutable and matches the tutorial's (app: postgres), so its StatefulSet can be adopted.
        const selector = { app: STATEFULSET_NAME };
        const labels = {
            ...selector,
            "app.kubernetes.io/name": "postgres",
            "app.kubernetes.io/instance": STATEFULSET_NAME,
            "app.kubernetes.io/component": "database",
            "app.kubernetes.io/part-of": partOf,
            "app.kubernetes.io/managed-by": "pulumi",
        };
        // Deleting a namespace deletes its PVCs, and with them (reclaim policy Delete) the volumes: the namespace
        // is protected, and kept in the cluster even when a stack is destroyed with protection turned off.
        const dataOpts: pulumi.CustomResourceOptions = { parent: this, protect, retainOnDelete: protect };

        this.namespace = new k8s.core.v1.Namespace(`${name}-namespace`, {
            metadata: { name: ns, labels: { "app.kubernetes.io/part-of": partOf } },
        }, dataOpts);
        const inNamespace = { parent: this, dependsOn: [this.namespace] };

        // Postgres keeps a role's password in its data directory; a new password here would lock the API out,
        // so the generated passwords are protected like the data itself.
        const appPassword = new random.RandomPassword(`${name}-password`, { length: 32, special: false }, { parent: this, protect });
        const replicationPassword = new random.RandomPassword(`${name}-replication-password`, { length: 32, special: false }, { parent: this, protect });
        this.password = pulumi.secret(appPassword.result);

        this.credentials = new k8s.core.v1.Secret(`${name}-credentials`, {
            metadata: { name: "postgres-credentials", namespace: ns, labels },
            type: "Opaque",
            stringData: {
                POSTGRES_USER: this.user,
                POSTGRES_DB: this.database,
                POSTGRES_PASSWORD: appPassword.result,
                REPLICATION_USER: "replicator",
                REPLICATION_PASSWORD: replicationPassword.result,
            },
        }, { ...inNamespace, protect });

        this.scripts = new k8s.core.v1.ConfigMap(`${name}-scripts`, {
            metadata: { name: "postgres-scripts", namespace: ns, labels },
            data: scripts,
        }, inNamespace);
        const scriptsChecksum = crypto.createHash("sha256").update(JSON.stringify(scripts)).digest("hex");

        const port = [{ name: "postgresql", port: POSTGRES_PORT, targetPort: "postgresql", protocol: "TCP" }];
        this.headlessService = new k8s.core.v1.Service(`${name}-headless`, {
            metadata: { name: HEADLESS_SERVICE, namespace: ns, labels },
            spec: {
                clusterIP: "None",
                selector,
                ports: port,
                // Standbys resolve postgres-0.<headless> while they bootstrap, before they are Ready themselves.
                publishNotReadyAddresses: true,
            },
        }, inNamespace);
        this.primaryService = new k8s.core.v1.Service(`${name}-primary`, {
            metadata: { name: PRIMARY_SERVICE, namespace: ns, labels },
            spec: {
                type: "ClusterIP",
                // Only the primary accepts writes; a Service over all pods would send writes to standbys.
                selector: { ...selector, "statefulset.kubernetes.io/pod-name": primaryPod },
                ports: port,
            },
        }, inNamespace);
        this.readOnlyService = new k8s.core.v1.Service(`${name}-read-only`, {
            metadata: { name: READ_ONLY_SERVICE, namespace: ns, labels },
            // Every pod serves consistent reads: standbys, and the primary so the Service has an endpoint when
            // replicas is 1. Clients that must avoid the primary use the standbys' pod DNS names.
            spec: { type: "ClusterIP", selector, ports: port },
        }, inNamespace);

        const secretEnv = (envName: string, key: string) => ({ name: envName, valueFrom: { secretKeyRef: { name: "postgres-credentials", key } } });
        const pgIsReady = ["/bin/sh", "-c", `exec pg_isready -h 127.0.0.1 -p ${POSTGRES_PORT} -U "$POSTGRES_USER" -d "$POSTGRES_DB"`];

        this.statefulSet = new k8s.apps.v1.StatefulSet(`${name}-statefulset`, {
            metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
            spec: {
                serviceName: HEADLESS_SERVICE,
                replicas,
                selector: { matchLabels: selector },
                // Ordinal 0 (the primary) starts first and is stopped last; a standby clones a running primary.
                podManagementPolicy: "OrderedReady",
                updateStrategy: { type: "RollingUpdate" },
                // Scaling down or deleting the StatefulSet never deletes a volume: scaling up again re-binds it.
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                minReadySeconds: 10,
                template: {
                    metadata: { labels, annotations: { "stateful-flask/scripts-sha256": scriptsChecksum } },
                    spec: {
                        automountServiceAccountToken: false,
                        // Long enough for a fast shutdown and its checkpoint; a SIGKILL means crash recovery on start.
                        terminationGracePeriodSeconds: 120,
                        securityContext: {
                            runAsNonRoot: true,
                            runAsUser: POSTGRES_UID,
                            runAsGroup: POSTGRES_UID,
                            fsGroup: POSTGRES_UID,
                            fsGroupChangePolicy: "OnRootMismatch",
                            seccompProfile: { type: "RuntimeDefault" },
                        },
                        affinity: {
                            podAntiAffinity: {
                                preferredDuringSchedulingIgnoredDuringExecution: [{
                                    weight: 100,
                                    podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector } },
                                }],
                            },
                        },
                        containers: [{
                            name: "postgres",
                            image,
                            command: ["/scripts/entrypoint.sh"],
                            ports: [{ name: "postgresql", containerPort: POSTGRES_PORT, protocol: "TCP" }],
                            env: [
                                { name: "PGDATA", value: PGDATA },
                                { name: "PGPORT", value: String(POSTGRES_PORT) },
                                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                                secretEnv("POSTGRES_USER", "POSTGRES_USER"),
                                secretEnv("POSTGRES_PASSWORD", "POSTGRES_PASSWORD"),
                                secretEnv("POSTGRES_DB", "POSTGRES_DB"),
                                secretEnv("REPLICATION_USER", "REPLICATION_USER"),
                                secretEnv("REPLICATION_PASSWORD", "REPLICATION_PASSWORD"),
                                { name: "PRIMARY_ORDINAL", value: String(primaryOrdinal) },
                                { name: "PRIMARY_HOST", value: `${primaryPod}.${this.headlessHost}` },
                                { name: "PRIMARY_PORT", value: String(POSTGRES_PORT) },
                                { name: "REPLICATION_CIDR", value: replicationCidr },
                            ],
                            resources,
                            securityContext: {
                                allowPrivilegeEscalation: false,
                                readOnlyRootFilesystem: true,
                                capabilities: { drop: ["ALL"] },
                            },
                            // A standby's first start clones the primary and any start may replay WAL: allow an hour
                            // before liveness applies.
                            startupProbe: { exec: { command: pgIsReady }, periodSeconds: 10, failureThreshold: 360, timeoutSeconds: 5 },
                            readinessProbe: { exec: { command: pgIsReady }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 },
                            livenessProbe: { exec: { command: pgIsReady }, periodSeconds: 20, failureThreshold: 6, timeoutSeconds: 5 },
                            // SIGTERM alone is a "smart" shutdown that waits for pooled API connections until the
                            // grace period ends in SIGKILL; a fast shutdown checkpoints and exits cleanly.
                            lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", "pg_ctl stop -D \"$PGDATA\" -m fast -w -t 100"] } } },
                            volumeMounts: [
                                { name: VOLUME_CLAIM_TEMPLATE, mountPath: DATA_MOUNT },
                                { name: "scripts", mountPath: "/scripts", readOnly: true },
                                { name: "run", mountPath: "/var/run/postgresql" },
                                { name: "tmp", mountPath: "/tmp" },
                            ],
                        }],
                        volumes: [
                            { name: "scripts", configMap: { name: "postgres-scripts", defaultMode: 0o555 } },
                            { name: "run", emptyDir: {} },
                            { name: "tmp", emptyDir: {} },
                        ],
                    },
                },
                // Exactly the tutorial's template: any difference in this immutable field replaces the StatefulSet.
                volumeClaimTemplates: [{
                    metadata: { name: VOLUME_CLAIM_TEMPLATE },
                    spec: {
                        accessModes: ["ReadWriteOnce"],
                        storageClassName: storageClass,
                        resources: { requests: { storage: storageSize } },
                    },
                }],
            },
        }, {
            ...inNamespace,
            dependsOn: [this.namespace, this.credentials, this.scripts, this.headlessService],
            protect,
            // volumeClaimTemplates are immutable (pulumi-kubernetes #4328): a new size there would replace the
            // StatefulSet. The size is applied to the existing PVCs instead (volumeSizes below); the template
            // keeps the size it was created with, which new ordinals start from before their patch grows them.
            ignoreChanges: ["spec.volumeClaimTemplates[0].spec.resources"],
        });

        // The safe resize path: patch each ordinal's PVC (StorageClass needs allowVolumeExpansion, which
        // do-block-storage has). Volumes only grow; Kubernetes rejects a smaller request and nothing changes.
        // retainOnDelete: dropping a patch on scale-down must not strip the size field from a retained PVC.
        this.volumeSizes = Array.from({ length: replicas }, (_, ordinal) => {
            const pvcName = `${VOLUME_CLAIM_TEMPLATE}-${STATEFULSET_NAME}-${ordinal}`;
            return new k8s.core.v1.PersistentVolumeClaimPatch(`${name}-${pvcName}-size`, {
                metadata: { name: pvcName, namespace: ns, annotations: { "pulumi.com/patchForce": "true" } },
                spec: { resources: { requests: { storage: storageSize } } },
            }, { parent: this, dependsOn: [this.statefulSet], retainOnDelete: true });
        });

        // At most one database pod is evicted at a time (drains, node upgrades). minAvailable would block DOKS
        // node pool upgrades entirely while replicas is 1; the volume follows the pod to its new node.
        this.disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
            metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
            spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
        }, inNamespace);

        // Port 5432 is open to the pods of the client namespaces that carry clientLabels, and to the other
        // Postgres pods (replication). Nothing else reaches the database.
        this.networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
            metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
            spec: {
                podSelector: { matchLabels: selector },
                policyTypes: ["Ingress"],
                ingress: [{
                    from: [
                        { podSelector: { matchLabels: selector } },
                        ...(args.clientNamespaces ?? []).map(clientNs => ({
                            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": clientNs } },
                            podSelector: { matchLabels: this.clientLabels },
                        })),
                    ],
                    ports: [{ protocol: "TCP", port: POSTGRES_PORT }],
                }],
            },
        }, inNamespace);

        this.registerOutputs({
            namespaceName: this.namespaceName,
            host: this.host,
            readOnlyHost: this.readOnlyHost,
            headlessHost: this.headlessHost,
            password: this.password,
        });
    }
}
