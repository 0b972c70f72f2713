/**
 * The Postgres pod template: Patroni (in the project's image, images/postgres) runs PostgreSQL, elects the leader
 * through the Kubernetes API and labels the pods by role. Pure: the inputs in, the template out, so the spec is
 * tested without the engine. The environment contract is images/postgres/pod/README.md.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

/** Where each pod's volume is mounted, and PGDATA inside it (a subdirectory: volumes carry lost+found). */
export const DATA_MOUNT = "/var/lib/postgresql/data";
export const PGDATA = `${DATA_MOUNT}/pgdata`;
export const POSTGRES_PORT = 5432;
/** Patroni's REST API: health, role and switchover. */
export const PATRONI_PORT = 8008;
/** The postgres user of the image (and of the official image, so its volumes keep their owner). */
export const POSTGRES_UID = 999;
/** The Patroni cluster name: its ConfigMaps are <scope>-config, -leader, -sync, -failover. */
export const PATRONI_SCOPE = "postgres";
/** The label Patroni sets on each pod, and the values Patroni 3.0 (the image's) uses. */
export const ROLE_LABEL = "role";
export const LEADER_ROLE = "master";
export const REPLICA_ROLE = "replica";
/** Where the image keeps the pod's scripts (images/postgres/Dockerfile). */
const POD_LIB = "/usr/local/lib/stateful-flask-postgres";
/** The pod's command line (images/postgres/pod/README.md): `pre-stop`, `backup-status`, `full-backup`, ... */
export const POD_SCRIPT = `${POD_LIB}/pod.py`;
/** The memory-backed run directory (RUN_DIR) and /tmp of each pod: their limits. */
export const RUN_DIR_SIZE = "64Mi";
export const TMP_DIR_SIZE = "64Mi";
/** The container that runs Patroni and PostgreSQL. */
export const POSTGRES_CONTAINER = "postgres";

/** The synchronous replication setting: on (default), off, or strict. */
export const SYNCHRONOUS_MODES = ["on", "off", "strict"] as const;
export type SynchronousMode = (typeof SYNCHRONOUS_MODES)[number];

/**
 * How the members are kept apart: `required`, no two members on one node (a member that finds no free node waits,
 * Pending); `preferred`, apart when the scheduler can, together when it cannot.
 */
export const ANTI_AFFINITIES = ["required", "preferred"] as const;
export type AntiAffinity = (typeof ANTI_AFFINITIES)[number];

/** Failover timing (Patroni's ttl, loop_wait, retry_timeout), in seconds. */
export interface FailoverTiming {
    readonly ttl: number;
    readonly loopWait: number;
    readonly retryTimeout: number;
}

export interface PostgresPodArgs {
    readonly image: string;
    /** Pod labels: the StatefulSet selector plus the recommended labels. */
    readonly labels: Record<string, string>;
    /** The labels Patroni lists its members by (a subset of `labels`, without the scope label). */
    readonly patroniLabels: Record<string, string>;
    /** The label whose value is the scope, e.g. app.kubernetes.io/instance. */
    readonly scopeLabel: string;
    readonly serviceAccountName: string;
    readonly credentialsSecret: string;
    readonly database: string;
    readonly user: string;
    readonly replicationUser: string;
    readonly podCidr: string;
    readonly synchronousMode: SynchronousMode;
    readonly timing: FailoverTiming;
    readonly maxSlotWalKeepSize: string;
    readonly antiAffinity: AntiAffinity;
    readonly volumeName: string;
    readonly resources: k8s.types.input.core.v1.ResourceRequirements;
    /** Extra environment (backups, TLS) and extra mounts/volumes for them. */
    readonly extraEnv?: k8s.types.input.core.v1.EnvVar[];
    readonly extraMounts?: k8s.types.input.core.v1.VolumeMount[];
    readonly extraVolumes?: k8s.types.input.core.v1.Volume[];
    readonly imagePullSecrets?: string[];
    /** Annotations on the template (a change rolls the pods). */
    readonly annotations?: Record<string, pulumi.Input<string>>;
}

const secretEnv = (secret: string, name: string, key = name) => ({
    name,
    valueFrom: { secretKeyRef: { name: secret, key } },
});
const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/** The pod template of the StatefulSet. */
export function postgresPodTemplate(a: PostgresPodArgs): k8s.types.input.core.v1.PodTemplateSpec {
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
        httpGet: { path, port: "patroni" },
        periodSeconds,
        failureThreshold,
        timeoutSeconds: 5,
    });
    const apart = { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: a.patroniLabels } };
    return {
        metadata: { labels: a.labels, ...(a.annotations ? { annotations: a.annotations } : {}) },
        spec: {
            serviceAccountName: a.serviceAccountName,
            // Patroni talks to the Kubernetes API with this token (the Role in patroni-rbac.ts).
            automountServiceAccountToken: true,
            // A Service named `postgres` would make the kubelet inject POSTGRES_PORT=tcp://… and friends.
            enableServiceLinks: false,
            // The leader's preStop hands leadership to a replica first (a switchover, not a crash); Patroni then
            // stops PostgreSQL with a fast shutdown and a checkpoint.
            terminationGracePeriodSeconds: 120,
            securityContext: {
                runAsNonRoot: true,
                runAsUser: POSTGRES_UID,
                runAsGroup: POSTGRES_UID,
                fsGroup: POSTGRES_UID,
                fsGroupChangePolicy: "OnRootMismatch",
                seccompProfile: { type: "RuntimeDefault" },
            },
            // One node's loss must not take the leader and its synchronous standby together.
            affinity: {
                podAntiAffinity:
                    a.antiAffinity === "required"
                        ? { requiredDuringSchedulingIgnoredDuringExecution: [apart] }
                        : {
                              preferredDuringSchedulingIgnoredDuringExecution: [
                                  { weight: 100, podAffinityTerm: apart },
                              ],
                          },
            },
            ...(a.imagePullSecrets?.length ? { imagePullSecrets: a.imagePullSecrets.map((name) => ({ name })) } : {}),
            containers: [
                {
                    name: POSTGRES_CONTAINER,
                    image: a.image,
                    ports: [
                        { name: "postgresql", containerPort: POSTGRES_PORT, protocol: "TCP" },
                        { name: "patroni", containerPort: PATRONI_PORT, protocol: "TCP" },
                    ],
                    env: [
                        fieldEnv("POD_NAME", "metadata.name"),
                        fieldEnv("POD_NAMESPACE", "metadata.namespace"),
                        fieldEnv("POD_IP", "status.podIP"),
                        { name: "PGDATA", value: PGDATA },
                        { name: "SCOPE", value: PATRONI_SCOPE },
                        { name: "KUBERNETES_LABELS", value: JSON.stringify(a.patroniLabels) },
                        { name: "SCOPE_LABEL", value: a.scopeLabel },
                        { name: "APP_USER", value: a.user },
                        { name: "APP_DATABASE", value: a.database },
                        { name: "REPLICATION_USER", value: a.replicationUser },
                        { name: "POD_CIDR", value: a.podCidr },
                        { name: "SYNCHRONOUS_MODE", value: a.synchronousMode },
                        { name: "TTL", value: String(a.timing.ttl) },
                        { name: "LOOP_WAIT", value: String(a.timing.loopWait) },
                        { name: "RETRY_TIMEOUT", value: String(a.timing.retryTimeout) },
                        { name: "MAX_SLOT_WAL_KEEP_SIZE", value: a.maxSlotWalKeepSize },
                        secretEnv(a.credentialsSecret, "SUPERUSER_PASSWORD"),
                        secretEnv(a.credentialsSecret, "REPLICATION_PASSWORD"),
                        secretEnv(a.credentialsSecret, "APP_PASSWORD", "POSTGRES_PASSWORD"),
                        secretEnv(a.credentialsSecret, "API_PASSWORD", "PATRONI_API_PASSWORD"),
                        ...(a.extraEnv ?? []),
                    ],
                    resources: a.resources,
                    securityContext: {
                        allowPrivilegeEscalation: false,
                        readOnlyRootFilesystem: true,
                        capabilities: { drop: ["ALL"] },
                    },
                    // Ready: the leader, or a replica whose PostgreSQL runs. The read-write Service selects the leader's
                    // role label AND readiness, so a dead leader's stale label sends no traffic.
                    readinessProbe: probe("/readiness", 5, 3),
                    // Patroni's own loop is alive (a replica cloning for an hour still answers).
                    livenessProbe: probe("/liveness", 10, 6),
                    lifecycle: { preStop: { exec: { command: ["/usr/bin/python3", POD_SCRIPT, "pre-stop"] } } },
                    volumeMounts: [
                        { name: a.volumeName, mountPath: DATA_MOUNT },
                        { name: "run", mountPath: "/var/run/postgresql" },
                        { name: "tmp", mountPath: "/tmp" },
                        ...(a.extraMounts ?? []),
                    ],
                },
            ],
            // In memory (tmpfs), never on the node's disk: the run directory holds Patroni's configuration with every
            // password, the pgpass file, pgBackRest's configuration with the S3 key and the cipher passphrase; /tmp gets
            // the superuser's password file while Patroni runs initdb. The sizes bound what they take from the
            // container's memory limit (a 16 MB WAL segment fetched by archive_push.py is the largest file).
            volumes: [
                { name: "run", emptyDir: { medium: "Memory", sizeLimit: RUN_DIR_SIZE } },
                { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: TMP_DIR_SIZE } },
                ...(a.extraVolumes ?? []),
            ],
        },
    };
}
