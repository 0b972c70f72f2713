import * as crypto from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { PatroniRbac } from "./patroni-rbac";
import { postgresDnsNames, tlsMaterial } from "./postgres-tls";
import { DocrPullSecret } from "./registry-access";
import {
    ANTI_AFFINITIES,
    AntiAffinity,
    type FailoverTiming,
    LEADER_ROLE,
    PATRONI_PORT,
    PATRONI_SCOPE,
    POD_SCRIPT,
    POSTGRES_CONTAINER,
    POSTGRES_PORT,
    REPLICA_ROLE,
    ROLE_LABEL,
    SYNCHRONOUS_MODES,
    SynchronousMode,
    postgresPodTemplate,
} from "./postgres-pod";
import {
    ConfigError,
    validateCidr,
    validateCronSchedule,
    validateInteger,
    validateName,
    validateOneOf,
    validatePinnedImage,
    validateReplicas,
    validateStorageSize,
} from "./validate";

// Names that carry data. PVCs are named <claim template>-<statefulset>-<ordinal> (postgredb-volume-postgres-0):
// renaming either one makes the StatefulSet ask for new, empty volumes and orphans the existing ones
// (pulumi-kubernetes #619). They match the tutorial's manifests so that its readers' volumes are found.
/** The StatefulSet's name. Part of every PVC name: never change it. */
export const STATEFULSET_NAME = "postgres";
/** The volumeClaimTemplate's name. Part of every PVC name: never change it. */
export const VOLUME_CLAIM_TEMPLATE = "postgredb-volume";
/** The headless Service that gives each pod its DNS name (postgres-0.postgres-headless...). */
export const HEADLESS_SERVICE = "postgres-headless";
/** The read-write Service; always the Patroni leader. The name the tutorial's API already uses. */
export const PRIMARY_SERVICE = "postgres";
/** The read-only Service: the replicas (the leader too while it runs alone). */
export const READ_ONLY_SERVICE = "postgres-ro";
/** The Secret with every role's password (its keys: see the credentials below). */
export const CREDENTIALS_SECRET = "postgres-credentials";
/** The replication role. */
export const REPLICATION_USER = "replicator";
/** The Secret with the server's TLS certificate, key and CA. */
export const TLS_SECRET = "postgres-tls";
/** Where the pods mount it. */
export const TLS_DIR = "/etc/postgresql-tls";
/** The Secret with the object store's key and the repository's passphrase. */
export const BACKUP_SECRET = "postgres-backup";
/** The ConfigMap with the object store's CA, when it has a private one; mounted at {@link BACKUP_CA_DIR}. */
export const BACKUP_CA_CONFIG_MAP = "postgres-backup-ca";
export const BACKUP_CA_DIR = "/etc/postgres-backup-ca";

export { ANTI_AFFINITIES, AntiAffinity, SYNCHRONOUS_MODES, SynchronousMode };

/** The defaults of {@link PostgresArgs}, in one place: config.ts applies the same ones to unset stack keys. */
export const POSTGRES_DEFAULTS = {
    namespace: "postgres",
    replicas: 1,
    synchronousMode: "on" as SynchronousMode,
    storageSize: "5Gi",
    storageClass: "do-block-storage",
    database: "stateful-flask-db",
    user: "stateful-flask-user",
    replicationCidr: "10.244.0.0/16",
    maxSlotWalKeepSize: "1GB",
    antiAffinity: "preferred" as AntiAffinity,
} as const;

/** The defaults and limits of {@link PostgresBackupArgs}; the pod (images/postgres/pod) refuses values outside them too. */
export const BACKUP_DEFAULTS = {
    schedule: "0 3 * * *",
    retentionFull: 7,
    archiveTimeout: 60,
    uriStyle: "host",
} as const;
export const BACKUP_LIMITS = { retentionFull: { min: 1, max: 100 }, archiveTimeout: { min: 10, max: 3600 } } as const;
/** `host` (virtual-hosted, as Spaces takes them) or `path` style S3 requests. */
export const S3_URI_STYLES = ["host", "path"] as const;

/** Strict synchronous replication needs a standby to confirm every commit, so at least this many members. */
export const STRICT_MIN_REPLICAS = 2;

/** The synchronous replication setting, checked against the member count it must run with. */
export function validateSynchronousMode(mode: unknown, replicas: number): SynchronousMode {
    const valid = validateOneOf("postgresSynchronousMode", mode, SYNCHRONOUS_MODES);
    if (valid === "strict" && replicas < STRICT_MIN_REPLICAS) {
        throw new ConfigError(
            "postgresSynchronousMode",
            valid,
            `strict needs postgresReplicas of at least ${STRICT_MIN_REPLICAS} (it is ${replicas}): a lone member could never confirm a commit, so every write would hang`,
        );
    }
    return valid;
}

/** The application role: a role name, and neither the superuser nor the replication role the pods use. */
export function validatePostgresUser(user: unknown): string {
    const valid = validateName("postgresUser", user);
    if (valid === "postgres" || valid === REPLICATION_USER) {
        throw new ConfigError(
            "postgresUser",
            valid,
            `expected a role other than postgres (the superuser) and ${REPLICATION_USER} (replication)`,
        );
    }
    return valid;
}

/** max_slot_wal_keep_size as PostgreSQL takes it here: a whole number of MB, GB or TB, or -1 (no limit). */
export function validateMaxSlotWalKeepSize(value: unknown): string {
    if (typeof value !== "string" || !/^(-1|[1-9]\d*(MB|GB|TB))$/.test(value)) {
        throw new ConfigError(
            "maxSlotWalKeepSize",
            value,
            "expected a size such as 512MB or 1GB, or -1 for no limit (a stopped replica's slot may then fill the leader's disk)",
        );
    }
    return value;
}

/** The schedule, retention and archive timeout of a backup, with their defaults applied. */
export function validateBackupSchedule(
    b: Pick<PostgresBackupArgs, "schedule" | "retentionFull" | "archiveTimeout" | "uriStyle">,
) {
    return {
        schedule: validateCronSchedule("backupSchedule", b.schedule ?? BACKUP_DEFAULTS.schedule),
        retentionFull: validateInteger(
            "backupRetentionFull",
            b.retentionFull ?? BACKUP_DEFAULTS.retentionFull,
            BACKUP_LIMITS.retentionFull.min,
            BACKUP_LIMITS.retentionFull.max,
        ),
        archiveTimeout: validateInteger(
            "archiveTimeout",
            b.archiveTimeout ?? BACKUP_DEFAULTS.archiveTimeout,
            BACKUP_LIMITS.archiveTimeout.min,
            BACKUP_LIMITS.archiveTimeout.max,
        ),
        uriStyle: validateOneOf("backupUriStyle", b.uriStyle ?? BACKUP_DEFAULTS.uriStyle, S3_URI_STYLES),
    };
}

/**
 * Continuous WAL archiving and scheduled base backups with pgBackRest to an S3-compatible store (DigitalOcean
 * Spaces; components/backup-storage.ts makes the bucket and its key), and the restore of a new stack from them.
 */
export interface PostgresBackupArgs {
    /** S3 endpoint host, e.g. fra1.digitaloceanspaces.com. */
    readonly endpoint: string;
    /** Region, e.g. fra1. */
    readonly region: string;
    readonly bucket: pulumi.Input<string>;
    /** The repository's path in the bucket, one per cluster: e.g. /stateful-flask/dev. */
    readonly path: string;
    /** S3 access key id and secret (secrets). */
    readonly accessKeyId: pulumi.Input<string>;
    readonly secretAccessKey: pulumi.Input<string>;
    /** Passphrase of the repository's encryption (aes-256-cbc), a secret; losing it loses the backups. */
    readonly cipherPassphrase: pulumi.Input<string>;
    /** When full backups run, a 5-field cron expression in UTC. @default "0 3 * * *" */
    readonly schedule?: string;
    /** Full backups kept (1-100); older ones and the WAL only they need are expired. @default 7 */
    readonly retentionFull?: number;
    /** archive_timeout in seconds (10-3600): the most WAL time a lost cluster can lose. @default 60 */
    readonly archiveTimeout?: number;
    /** `host` (virtual-hosted, Spaces) or `path` style S3 URLs. @default "host" */
    readonly uriStyle?: "host" | "path";
    /** PEM CA(s) the endpoint's certificate is verified against instead of the image's public CAs. @default the public CAs */
    readonly caCertificate?: string;
    /** Create this cluster from a backup: the source repository's path (same bucket), and optionally a time. */
    readonly restoreFrom?: { readonly path: string; readonly targetTime?: string };
}

/** Container resources. */
export interface Resources {
    readonly requests: { readonly cpu: string; readonly memory: string };
    readonly limits: { readonly cpu: string; readonly memory: string };
}

/** Arguments of {@link Postgres}. */
export interface PostgresArgs {
    /** Namespace, created and owned by this component. @default "postgres" */
    readonly namespace?: string;
    /** Members of the Patroni cluster: one leader, the others streaming replicas. @default 1 */
    readonly replicas?: number;
    /** The project's Postgres image (images/postgres: PostgreSQL 15, Patroni, pgBackRest), pinned. */
    readonly image: string;
    /** Size of each pod's volume. Raising it resizes the existing PVCs in place. @default "5Gi" */
    readonly storageSize?: string;
    /** StorageClass of the volumes (`do-block-storage-retain` keeps the disk if a PVC is deleted). @default "do-block-storage" */
    readonly storageClass?: string;
    /** Application database. @default "stateful-flask-db" */
    readonly database?: string;
    /** Application role, owner of the database (not a superuser). @default "stateful-flask-user" */
    readonly user?: string;
    /** Pod network: replication and the members' superuser connections (pg_rewind) are admitted from it. @default "10.244.0.0/16" */
    readonly replicationCidr?: string;
    /**
     * `on`: with replicas, every commit is confirmed by a synchronous standby before it is acknowledged, so a
     * failover never loses an acknowledged write; a lone leader still takes writes. `strict`: never acknowledge a
     * commit without a standby (writes stop when none is left; needs replicas >= 2). `off`: asynchronous.
     * @default "on"
     */
    readonly synchronousMode?: SynchronousMode;
    /**
     * Keep the members on separate nodes: `required` (a member that finds no free node waits, Pending, until one is)
     * when the cluster has a node for each member, else `preferred` (two may share a node, and that node's loss takes
     * both). This component cannot see the nodes; the caller decides (index.ts: config's memberSpread). @default "preferred"
     */
    readonly antiAffinity?: AntiAffinity;
    /** Failover timing; the reasoning is in docs/failover.md. @default ttl 7 s, loop_wait 1 s, retry_timeout 3 s */
    readonly timing?: FailoverTiming;
    /** Namespaces whose pods labelled {@link Postgres.clientLabels} may connect (NetworkPolicy). @default [] */
    readonly clientNamespaces?: string[];
    /** The `app.kubernetes.io/part-of` label. @default "stateful-flask" */
    readonly partOf?: string;
    /** Protect the namespace, StatefulSet and credentials from `pulumi destroy` and replacement. @default true */
    readonly protect?: boolean;
    /** The application role's password (a secret); generated by @pulumi/random when unset. */
    readonly password?: pulumi.Input<string>;
    /** The replication role's password (a secret); generated when unset. */
    readonly replicationPassword?: pulumi.Input<string>;
    /** The superuser's (postgres) password (a secret); generated when unset. */
    readonly superuserPassword?: pulumi.Input<string>;
    /** The password of Patroni's REST API for switchover and configuration (a secret); generated when unset. */
    readonly patroniApiPassword?: pulumi.Input<string>;
    /**
     * WAL a replication slot may hold back for a stopped replica before the slot is given up (the replica then
     * needs a fresh clone). Bounds the leader's disk use; keep it well under the volume size. `-1` is no limit, as
     * PostgreSQL and the pod take it. @default "1GB"
     */
    readonly maxSlotWalKeepSize?: string;
    /** The DigitalOcean Container Registry the image is pulled from; the pods get read-only credentials for it. @default none */
    readonly docrRegistry?: string;
    /** Postgres container resources. @default requests 250m/512Mi, limits 1 CPU/1Gi */
    readonly resources?: Resources;
    /** Backups to object storage; none when unset. @default none */
    readonly backup?: PostgresBackupArgs;
    /**
     * TLS on every connection: the server certificate (Services and pod names) and its CA are derived from this
     * secret seed (components/postgres-tls.ts); clients get {@link Postgres.caCertificate}. A generated seed when
     * `true`; no TLS when `false`. @default true
     */
    readonly tls?: boolean | { readonly seed: pulumi.Input<string> };
}

const DEFAULT_TIMING: FailoverTiming = { ttl: 7, loopWait: 1, retryTimeout: 3 };

/** Validates the failover timing the way pod.py does: loop_wait + 2 * retry_timeout <= ttl. */
export function validateTiming(t: FailoverTiming): FailoverTiming {
    validateInteger("ttl", t.ttl, 5, 300);
    validateInteger("loopWait", t.loopWait, 1, 60);
    validateInteger("retryTimeout", t.retryTimeout, 1, 120);
    if (t.loopWait + 2 * t.retryTimeout > t.ttl) {
        throw new ConfigError(
            "ttl",
            t.ttl,
            `expected at least loopWait + 2 * retryTimeout = ${t.loopWait + 2 * t.retryTimeout} (a leader must not lose its lock while it still retries the API)`,
        );
    }
    return t;
}

/**
 * PostgreSQL as a StatefulSet run by Patroni: one volume per pod from a volumeClaimTemplate, a headless Service
 * for stable pod identities, leader election and automatic failover with the Kubernetes API as the consensus
 * store (ConfigMaps), synchronous replication by default, a read-write Service on the leader's role label and a
 * read-only one on the replicas, generated credentials in a Secret, a PodDisruptionBudget and a NetworkPolicy.
 */
export class Postgres extends pulumi.ComponentResource {
    public readonly namespace: k8s.core.v1.Namespace;
    public readonly credentials: k8s.core.v1.Secret;
    public readonly rbac: PatroniRbac;
    /** The image pull Secret and its DOCR credentials, when `docrRegistry` is set. */
    public readonly pullSecret?: DocrPullSecret;
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
    /** The superuser's password (secret). */
    public readonly superuserPassword: pulumi.Output<string>;
    /** DNS name of the read-write Service (the leader). */
    public readonly host: string;
    /** DNS name of the read-only Service. */
    public readonly readOnlyHost: string;
    /** DNS name of the headless Service; pods are <statefulset>-<ordinal>.<this>. */
    public readonly headlessHost: string;
    /** Each member's own DNS name, by ordinal: postgres-0.postgres-headless.<namespace>.svc.cluster.local, ... */
    public readonly podHosts: string[];
    /** The label selector of the leader's pod (`kubectl get pods -l ...`): Patroni moves the role label with the leadership. */
    public readonly leaderSelector: string;
    /** The command that prints the last backups and the WAL archive's state, run in the leader; undefined without backups. */
    public readonly backupStatusCommand?: string;
    public readonly synchronousMode: SynchronousMode;
    /** The object store's key and the repository passphrase, when backups are on. */
    public readonly backupSecret?: k8s.core.v1.Secret;
    /** The object store's private CA, when one is given. */
    public readonly backupCaConfigMap?: k8s.core.v1.ConfigMap;
    /** The server's TLS certificate, key and CA, when TLS is on. */
    public readonly tlsSecret?: k8s.core.v1.Secret;
    /** The CA clients verify the server with (PEM, public); undefined without TLS. */
    public readonly caCertificate?: pulumi.Output<string>;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:database:Postgres", name, {}, opts);

        const d = POSTGRES_DEFAULTS;
        const ns = validateName("postgresNamespace", args.namespace ?? d.namespace);
        const replicas = validateReplicas("postgresReplicas", args.replicas ?? d.replicas);
        const image = validatePinnedImage("postgresImage", args.image);
        const storageSize = validateStorageSize("postgresStorageSize", args.storageSize ?? d.storageSize);
        const storageClass = validateName("storageClass", args.storageClass ?? d.storageClass, 253);
        const replicationCidr = validateCidr("replicationCidr", args.replicationCidr ?? d.replicationCidr);
        const synchronousMode = validateSynchronousMode(args.synchronousMode ?? d.synchronousMode, replicas);
        const timing = validateTiming(args.timing ?? DEFAULT_TIMING);
        this.database = validateName("postgresDatabase", args.database ?? d.database);
        this.user = validatePostgresUser(args.user ?? d.user);
        const partOf = args.partOf ?? "stateful-flask";
        const protect = args.protect ?? true;
        const resources = args.resources ?? {
            requests: { cpu: "250m", memory: "512Mi" },
            limits: { cpu: "1", memory: "1Gi" },
        };
        const maxSlotWalKeepSize = validateMaxSlotWalKeepSize(args.maxSlotWalKeepSize ?? d.maxSlotWalKeepSize);
        const antiAffinity = validateOneOf("antiAffinity", args.antiAffinity ?? d.antiAffinity, ANTI_AFFINITIES);
        this.synchronousMode = synchronousMode;
        this.namespaceName = ns;
        this.host = `${PRIMARY_SERVICE}.${ns}.svc.cluster.local`;
        this.readOnlyHost = `${READ_ONLY_SERVICE}.${ns}.svc.cluster.local`;
        this.headlessHost = `${HEADLESS_SERVICE}.${ns}.svc.cluster.local`;
        this.podHosts = Array.from(
            { length: replicas },
            (_, ordinal) => `${STATEFULSET_NAME}-${ordinal}.${this.headlessHost}`,
        );

        // The selector is immutable and matches the tutorial's (app: postgres), so its StatefulSet can be adopted.
        const selector = { app: STATEFULSET_NAME };
        // Patroni finds its members by these labels plus the scope label (app.kubernetes.io/instance=postgres).
        const scopeLabel = "app.kubernetes.io/instance";
        const labels = {
            ...selector,
            "app.kubernetes.io/name": "postgres",
            [scopeLabel]: PATRONI_SCOPE,
            "app.kubernetes.io/component": "database",
            "app.kubernetes.io/part-of": partOf,
            "app.kubernetes.io/managed-by": "pulumi",
        };
        const members = { ...selector, [scopeLabel]: PATRONI_SCOPE };
        this.leaderSelector = Object.entries({ ...selector, [ROLE_LABEL]: LEADER_ROLE })
            .map(([k, v]) => `${k}=${v}`)
            .join(",");
        if (args.backup) {
            this.backupStatusCommand = `kubectl -n ${ns} exec "$(kubectl -n ${ns} get pods -l ${this.leaderSelector} -o name)" -c ${POSTGRES_CONTAINER} -- ${POD_SCRIPT} backup-status`;
        }
        // Deleting a namespace deletes its PVCs, and with them (reclaim policy Delete) the volumes: the namespace
        // is protected, and kept in the cluster even when a stack is destroyed with protection turned off.
        const dataOpts: pulumi.CustomResourceOptions = { parent: this, protect, retainOnDelete: protect };

        this.namespace = new k8s.core.v1.Namespace(
            `${name}-namespace`,
            {
                metadata: { name: ns, labels: { "app.kubernetes.io/part-of": partOf } },
            },
            dataOpts,
        );
        const inNamespace = { parent: this, dependsOn: [this.namespace] };

        // Postgres keeps a role's password in its data directory; a new password here would lock the API out,
        // so the generated passwords are protected like the data itself.
        // Bring your own (stack secrets) or generate: 32 alphanumeric characters need no escaping in a URL.
        const generated = (suffix: string) =>
            new random.RandomPassword(`${name}-${suffix}`, { length: 32, special: false }, { parent: this, protect })
                .result;
        this.password = pulumi.secret(args.password ?? generated("password"));
        const replicationPassword = pulumi.secret(args.replicationPassword ?? generated("replication-password"));
        this.superuserPassword = pulumi.secret(args.superuserPassword ?? generated("superuser-password"));
        const apiPassword = pulumi.secret(args.patroniApiPassword ?? generated("patroni-api-password"));

        this.credentials = new k8s.core.v1.Secret(
            `${name}-credentials`,
            {
                metadata: { name: CREDENTIALS_SECRET, namespace: ns, labels },
                type: "Opaque",
                stringData: {
                    POSTGRES_USER: this.user,
                    POSTGRES_DB: this.database,
                    POSTGRES_PASSWORD: this.password,
                    REPLICATION_USER,
                    REPLICATION_PASSWORD: replicationPassword,
                    SUPERUSER_PASSWORD: this.superuserPassword,
                    PATRONI_API_PASSWORD: apiPassword,
                },
            },
            { ...inNamespace, protect },
        );

        this.pullSecret =
            args.docrRegistry === undefined
                ? undefined
                : new DocrPullSecret(
                      `${name}-docr`,
                      {
                          namespace: this.namespace.metadata.name,
                          registryName: args.docrRegistry,
                          labels,
                      },
                      { parent: this },
                  );

        // TLS: material derived from a secret seed, the same on every `up`; the pods roll when it changes.
        const tlsArg = args.tls ?? true;
        let tlsEnv: k8s.types.input.core.v1.EnvVar[] = [];
        let tlsMounts: k8s.types.input.core.v1.VolumeMount[] = [];
        let tlsVolumes: k8s.types.input.core.v1.Volume[] = [];
        let tlsChecksum: pulumi.Output<string> | undefined;
        if (tlsArg !== false) {
            const seed = tlsArg === true ? generated("tls-seed") : pulumi.output(tlsArg.seed);
            const names = postgresDnsNames(ns, {
                primary: PRIMARY_SERVICE,
                readOnly: READ_ONLY_SERVICE,
                headless: HEADLESS_SERVICE,
            });
            const material = pulumi.secret(seed).apply((s) => {
                if (s.length < 16) {
                    throw new ConfigError(
                        "postgresTlsSeed",
                        `a secret of ${s.length} characters`,
                        "expected at least 16 characters; set it with pulumi config set --secret postgresTlsSeed, or unset it to generate one",
                    );
                }
                return tlsMaterial(s, names);
            });
            this.caCertificate = pulumi.unsecret(material.apply((m) => m.caCert));
            tlsChecksum = pulumi.unsecret(
                material.apply((m) => crypto.createHash("sha256").update(m.cert).digest("hex")),
            );
            this.tlsSecret = new k8s.core.v1.Secret(
                `${name}-tls`,
                {
                    metadata: { name: TLS_SECRET, namespace: ns, labels },
                    type: "kubernetes.io/tls",
                    stringData: {
                        "tls.crt": material.apply((m) => m.cert),
                        "tls.key": material.apply((m) => m.key),
                        "ca.crt": material.apply((m) => m.caCert),
                    },
                },
                inNamespace,
            );
            tlsEnv = [{ name: "TLS_DIR", value: TLS_DIR }];
            tlsMounts = [{ name: "tls", mountPath: TLS_DIR, readOnly: true }];
            // Root-owned, group postgres (fsGroup), 0440: what PostgreSQL accepts for a key it does not own.
            tlsVolumes = [{ name: "tls", secret: { secretName: TLS_SECRET, defaultMode: 0o440 } }];
        }

        let backupEnv: k8s.types.input.core.v1.EnvVar[] = [];
        const backupMounts: k8s.types.input.core.v1.VolumeMount[] = [];
        const backupVolumes: k8s.types.input.core.v1.Volume[] = [];
        if (args.backup) {
            const b = args.backup;
            const schedule = validateBackupSchedule(b);
            this.backupSecret = new k8s.core.v1.Secret(
                `${name}-backup`,
                {
                    metadata: { name: BACKUP_SECRET, namespace: ns, labels },
                    type: "Opaque",
                    stringData: {
                        BACKUP_S3_KEY: pulumi.secret(b.accessKeyId),
                        BACKUP_S3_KEY_SECRET: pulumi.secret(b.secretAccessKey),
                        BACKUP_CIPHER_PASS: pulumi.secret(b.cipherPassphrase),
                    },
                },
                inNamespace,
            );
            const fromSecret = (envName: string) => ({
                name: envName,
                valueFrom: { secretKeyRef: { name: BACKUP_SECRET, key: envName } },
            });
            backupEnv = [
                { name: "BACKUP_S3_ENDPOINT", value: b.endpoint },
                { name: "BACKUP_S3_REGION", value: b.region },
                { name: "BACKUP_S3_BUCKET", value: b.bucket },
                { name: "BACKUP_S3_URI_STYLE", value: schedule.uriStyle },
                { name: "BACKUP_PATH", value: b.path },
                { name: "BACKUP_SCHEDULE", value: schedule.schedule },
                { name: "BACKUP_RETENTION_FULL", value: String(schedule.retentionFull) },
                { name: "ARCHIVE_TIMEOUT", value: String(schedule.archiveTimeout) },
                fromSecret("BACKUP_S3_KEY"),
                fromSecret("BACKUP_S3_KEY_SECRET"),
                fromSecret("BACKUP_CIPHER_PASS"),
                ...(b.restoreFrom ? [{ name: "RESTORE_FROM_PATH", value: b.restoreFrom.path }] : []),
                ...(b.restoreFrom?.targetTime
                    ? [{ name: "RESTORE_TARGET_TIME", value: b.restoreFrom.targetTime }]
                    : []),
            ];
            if (b.caCertificate !== undefined) {
                this.backupCaConfigMap = new k8s.core.v1.ConfigMap(
                    `${name}-backup-ca`,
                    {
                        metadata: { name: BACKUP_CA_CONFIG_MAP, namespace: ns, labels },
                        data: { "ca.crt": b.caCertificate },
                    },
                    inNamespace,
                );
                backupEnv.push({ name: "BACKUP_S3_CA_FILE", value: `${BACKUP_CA_DIR}/ca.crt` });
                backupMounts.push({ name: "backup-ca", mountPath: BACKUP_CA_DIR, readOnly: true });
                backupVolumes.push({ name: "backup-ca", configMap: { name: BACKUP_CA_CONFIG_MAP } });
            }
        }

        this.rbac = new PatroniRbac(
            `${name}-patroni`,
            { namespace: ns, name: "postgres", labels },
            { parent: this, dependsOn: [this.namespace] },
        );

        const port = [{ name: "postgresql", port: POSTGRES_PORT, targetPort: "postgresql", protocol: "TCP" }];
        this.headlessService = new k8s.core.v1.Service(
            `${name}-headless`,
            {
                metadata: { name: HEADLESS_SERVICE, namespace: ns, labels },
                spec: {
                    clusterIP: "None",
                    selector,
                    ports: port,
                    // Replicas resolve their peers while they bootstrap, before they are Ready themselves.
                    publishNotReadyAddresses: true,
                },
            },
            inNamespace,
        );
        this.primaryService = new k8s.core.v1.Service(
            `${name}-primary`,
            {
                metadata: { name: PRIMARY_SERVICE, namespace: ns, labels },
                spec: {
                    type: "ClusterIP",
                    // The pod Patroni labels as the leader, and only while it is Ready (a dead leader keeps its label
                    // until its pod restarts; readiness takes it out of the endpoints).
                    selector: { ...members, [ROLE_LABEL]: LEADER_ROLE },
                    ports: port,
                },
            },
            inNamespace,
        );
        this.readOnlyService = new k8s.core.v1.Service(
            `${name}-read-only`,
            {
                metadata: { name: READ_ONLY_SERVICE, namespace: ns, labels },
                // The replicas; with one member, the leader, so reads always have an endpoint.
                spec: {
                    type: "ClusterIP",
                    selector: replicas > 1 ? { ...members, [ROLE_LABEL]: REPLICA_ROLE } : members,
                    ports: port,
                },
            },
            inNamespace,
        );

        this.statefulSet = new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
                spec: {
                    serviceName: HEADLESS_SERVICE,
                    replicas,
                    selector: { matchLabels: selector },
                    // Immutable since the first deployment; Patroni does not need ordered starts, but changing it would
                    // replace the StatefulSet.
                    podManagementPolicy: "OrderedReady",
                    updateStrategy: { type: "RollingUpdate" },
                    // Scaling down or deleting the StatefulSet never deletes a volume: scaling up again re-binds it.
                    persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                    minReadySeconds: 10,
                    template: postgresPodTemplate({
                        image,
                        labels,
                        patroniLabels: selector,
                        scopeLabel,
                        serviceAccountName: this.rbac.serviceAccountName,
                        credentialsSecret: CREDENTIALS_SECRET,
                        database: this.database,
                        user: this.user,
                        replicationUser: REPLICATION_USER,
                        podCidr: replicationCidr,
                        synchronousMode,
                        timing,
                        maxSlotWalKeepSize,
                        antiAffinity,
                        volumeName: VOLUME_CLAIM_TEMPLATE,
                        resources,
                        imagePullSecrets: this.pullSecret ? [this.pullSecret.secretName] : undefined,
                        extraEnv: [...tlsEnv, ...backupEnv],
                        extraMounts: [...tlsMounts, ...backupMounts],
                        extraVolumes: [...tlsVolumes, ...backupVolumes],
                        annotations: tlsChecksum ? { "stateful-flask/tls-sha256": tlsChecksum } : undefined,
                    }),
                    // Exactly the tutorial's template: any difference in this immutable field replaces the StatefulSet.
                    volumeClaimTemplates: [
                        {
                            metadata: { name: VOLUME_CLAIM_TEMPLATE },
                            spec: {
                                accessModes: ["ReadWriteOnce"],
                                storageClassName: storageClass,
                                resources: { requests: { storage: storageSize } },
                            },
                        },
                    ],
                },
            },
            {
                ...inNamespace,
                dependsOn: [
                    this.namespace,
                    this.credentials,
                    this.rbac,
                    this.headlessService,
                    ...(this.pullSecret ? [this.pullSecret] : []),
                    ...(this.backupSecret ? [this.backupSecret] : []),
                    ...(this.backupCaConfigMap ? [this.backupCaConfigMap] : []),
                    ...(this.tlsSecret ? [this.tlsSecret] : []),
                ],
                protect,
                // volumeClaimTemplates are immutable (pulumi-kubernetes #4328): a new size there would replace the
                // StatefulSet. The size is applied to the existing PVCs instead (volumeSizes below); the template
                // keeps the size it was created with, which new ordinals start from before their patch grows them.
                ignoreChanges: ["spec.volumeClaimTemplates[0].spec.resources"],
            },
        );

        // The safe resize path: patch each ordinal's PVC (StorageClass needs allowVolumeExpansion, which
        // do-block-storage has). Volumes only grow; Kubernetes rejects a smaller request and nothing changes.
        // retainOnDelete: dropping a patch on scale-down must not strip the size field from a retained PVC.
        this.volumeSizes = Array.from({ length: replicas }, (_, ordinal) => {
            const pvcName = `${VOLUME_CLAIM_TEMPLATE}-${STATEFULSET_NAME}-${ordinal}`;
            return new k8s.core.v1.PersistentVolumeClaimPatch(
                `${name}-${pvcName}-size`,
                {
                    // skipAwait: the provider's PVC await treats a WaitForFirstConsumer claim as ready only while it is
                    // Pending, and this claim is already bound, so it would time out on kind, minikube and the local
                    // cluster (a resize completes asynchronously anyway).
                    metadata: {
                        name: pvcName,
                        namespace: ns,
                        annotations: { "pulumi.com/patchForce": "true", "pulumi.com/skipAwait": "true" },
                    },
                    spec: { resources: { requests: { storage: storageSize } } },
                },
                { parent: this, dependsOn: [this.statefulSet], retainOnDelete: true },
            );
        });

        // At most one database pod is evicted at a time (drains, node upgrades); the leader's preStop switches
        // over first. minAvailable would block DOKS node pool upgrades entirely while replicas is 1.
        this.disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
            `${name}-pdb`,
            {
                metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
                spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
            },
            inNamespace,
        );

        // Port 5432 is open to the pods of the client namespaces that carry clientLabels, and to the other
        // members (replication, pg_rewind); Patroni's REST API (switchover, configuration) to the members only.
        const peers = { podSelector: { matchLabels: selector } };
        this.networkPolicy = new k8s.networking.v1.NetworkPolicy(
            `${name}-network-policy`,
            {
                metadata: { name: STATEFULSET_NAME, namespace: ns, labels },
                spec: {
                    podSelector: { matchLabels: selector },
                    policyTypes: ["Ingress"],
                    ingress: [
                        {
                            from: [
                                peers,
                                ...(args.clientNamespaces ?? []).map((clientNs) => ({
                                    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": clientNs } },
                                    podSelector: { matchLabels: this.clientLabels },
                                })),
                            ],
                            ports: [{ protocol: "TCP", port: POSTGRES_PORT }],
                        },
                        { from: [peers], ports: [{ protocol: "TCP", port: PATRONI_PORT }] },
                    ],
                },
            },
            inNamespace,
        );

        this.registerOutputs({
            namespaceName: this.namespaceName,
            host: this.host,
            readOnlyHost: this.readOnlyHost,
            headlessHost: this.headlessHost,
            podHosts: this.podHosts,
            password: this.password,
            synchronousMode: this.synchronousMode,
        });
    }
}
