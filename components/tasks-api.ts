import * as crypto from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Resources } from "./postgres";
import { DocrPullSecret } from "./registry-access";
import {
    ConfigError,
    REPLICA_LIMITS,
    validateInteger,
    validateName,
    validatePinnedImage,
    validateReplicas,
} from "./validate";

/** Where and how the API reaches its database. */
export interface DatabaseConnection {
    /** DNS name of the read-write Service. */
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user: string;
    /** A secret. */
    readonly password: pulumi.Input<string>;
    /** Labels the database's NetworkPolicy admits. */
    readonly clientLabels: Record<string, string>;
    /** What must be ready before migrations run (the StatefulSet): a Job against a booting database fails its attempts. */
    readonly readiness?: pulumi.Resource;
    /**
     * The CA of the database's TLS certificate (PEM). When set, every connection uses TLS with sslmode verify-full:
     * the server must present a certificate from this CA for the host name the client dialled.
     */
    readonly caCertificate?: pulumi.Input<string>;
}

/** Arguments of {@link TasksApi}. */
export interface TasksApiArgs {
    /** Namespace, created by this component. @default "stateful-namespace" */
    readonly namespace?: string;
    /** Name of the Deployment, its Service and the `app` label. @default "stateful-flask" */
    readonly name?: string;
    /** The Flask image, pinned to a release tag or digest. */
    readonly image: string;
    /**
     * The DigitalOcean Container Registry the image is pulled from: read-only credentials for it go into a pull
     * Secret in the namespace ({@link DocrPullSecret}), named in the pods' `imagePullSecrets`.
     * @default none: the nodes pull the image without credentials
     */
    readonly docrRegistry?: string;
    /** Pods of the API. Its own setting; the policy pack checks it equals the database's. @default 1 */
    readonly replicas?: number;
    /**
     * The port gunicorn listens on in the container, 1024-65535: the container's port and the probes' target, and
     * given to the image as the environment variable PORT, which it binds to. @default 5000
     */
    readonly port?: number;
    /**
     * The migration command, run once per release by a Job. The app's `release-migrate` runs `flask db upgrade`
     * and records the release's revisions, so that a rolled-back release sees the database is ahead and leaves
     * it alone instead of failing (docs/app.md). @default ["flask", "release-migrate"]
     */
    readonly migrationCommand?: string[];
    readonly database: DatabaseConnection;
    /** The `app.kubernetes.io/part-of` label. @default "stateful-flask" */
    readonly partOf?: string;
    /** UID the containers run as (the image must not need root). @default 10001 */
    readonly runAsUser?: number;
    /** API container resources. @default requests 100m/128Mi, limits 500m/256Mi */
    readonly resources?: Resources;
}

/** The defaults of {@link TasksApiArgs}; config.ts applies the same ones to unset stack keys. */
export const API_DEFAULTS = {
    namespace: "stateful-namespace",
    name: "stateful-flask",
    replicas: 1,
    port: 5000,
} as const;
/**
 * The limits of {@link TasksApiArgs}: the name leaves room for the suffixes of the names derived from it
 * (-migrate-<hash>); the replicas are the database's range (REPLICA_LIMITS); the port is unprivileged, because the
 * API runs as a non-root user with every capability dropped and so cannot bind below 1024.
 */
export const API_LIMITS = { nameLength: 40, replicas: REPLICA_LIMITS, port: { min: 1024, max: 65535 } } as const;
/** The environment variable the image's gunicorn binds to (images/api/gunicorn.conf.py: 0.0.0.0:$PORT). */
export const API_PORT_ENV = "PORT";
/** The image's health route (images/api: 200 with {"status": "ok"}): the readiness and liveness probes' path. */
export const API_HEALTH_PATH = "/healthz";

/** The container port: unprivileged, as a non-root process without capabilities can bind it. */
export function validateApiPort(port: unknown): number {
    const { min, max } = API_LIMITS.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < min || port > max) {
        throw new ConfigError(
            "apiPort",
            port,
            `expected an integer from ${min} to ${max}: the API runs as a non-root user without capabilities, which cannot bind a port below ${min}`,
        );
    }
    return port;
}

/** The migration Job's name: one per release, so a new image (or command) runs the migrations again. */
export function migrationJobName(apiName: string, image: string, command: readonly string[]): string {
    const release = crypto.createHash("sha256").update(JSON.stringify({ image, command })).digest("hex").slice(0, 10);
    return `${apiName}-migrate-${release}`;
}

/**
 * The Flask "tasks" API: a Deployment behind a ClusterIP Service, its database credentials in a Secret, and
 * a Job that runs the schema migrations (`flask release-migrate`: `flask db upgrade` plus the revision record
 * that makes rollbacks safe) once per release before the new pods roll out.
 */
export class TasksApi extends pulumi.ComponentResource {
    public readonly namespace: k8s.core.v1.Namespace;
    /** The image pull Secret and its DOCR credentials, when `docrRegistry` is set. */
    public readonly pullSecret?: DocrPullSecret;
    public readonly databaseSecret: k8s.core.v1.Secret;
    public readonly migrationJob: k8s.batch.v1.Job;
    /** The database's CA, when the connection uses TLS. */
    public readonly caConfigMap?: k8s.core.v1.ConfigMap;
    public readonly deployment: k8s.apps.v1.Deployment;
    public readonly service: k8s.core.v1.Service;
    public readonly namespaceName: string;
    public readonly serviceName: string;
    public readonly servicePort = 80;

    constructor(name: string, args: TasksApiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:app:TasksApi", name, {}, opts);

        const d = API_DEFAULTS;
        const ns = validateName("apiNamespace", args.namespace ?? d.namespace);
        const appName = validateName("apiName", args.name ?? d.name, API_LIMITS.nameLength);
        const image = validatePinnedImage("apiImage", args.image);
        const replicas = validateReplicas("apiReplicas", args.replicas ?? d.replicas);
        const port = validateApiPort(args.port ?? d.port);
        const migrationCommand = args.migrationCommand ?? ["flask", "release-migrate"];
        const partOf = args.partOf ?? "stateful-flask";
        const runAsUser = validateInteger("runAsUser", args.runAsUser ?? 10001, 1);
        const resources = args.resources ?? {
            requests: { cpu: "100m", memory: "128Mi" },
            limits: { cpu: "500m", memory: "256Mi" },
        };
        const db = args.database;
        this.namespaceName = ns;
        this.serviceName = appName;

        const selector = { app: appName };
        const labels = {
            ...selector,
            "app.kubernetes.io/name": appName,
            "app.kubernetes.io/component": "api",
            "app.kubernetes.io/part-of": partOf,
            "app.kubernetes.io/managed-by": "pulumi",
        };

        this.namespace = new k8s.core.v1.Namespace(
            `${name}-namespace`,
            {
                metadata: { name: ns, labels: { "app.kubernetes.io/part-of": partOf } },
            },
            { parent: this },
        );
        const inNamespace = { parent: this, dependsOn: [this.namespace] };

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
        // The pods wait for the Secret: a pod that starts pulling before it exists backs off for minutes.
        const pullSecrets = this.pullSecret ? [this.pullSecret] : [];
        const imagePullSecrets = this.pullSecret ? [{ name: this.pullSecret.secretName }] : undefined;

        // TLS to the database: the CA in a ConfigMap (it is public), mounted where libpq is told to find it.
        const caDir = "/etc/postgres-ca";
        const tls = db.caCertificate !== undefined;
        this.caConfigMap = tls
            ? new k8s.core.v1.ConfigMap(
                  `${name}-postgres-ca`,
                  {
                      metadata: { name: `${appName}-postgres-ca`, namespace: ns, labels },
                      data: { "ca.crt": db.caCertificate as pulumi.Input<string> },
                  },
                  inNamespace,
              )
            : undefined;
        const caVolumes = tls ? [{ name: "postgres-ca", configMap: { name: `${appName}-postgres-ca` } }] : undefined;
        const caMounts = tls ? [{ name: "postgres-ca", mountPath: caDir, readOnly: true }] : undefined;
        const caChecksum = tls
            ? pulumi
                  .output(db.caCertificate as pulumi.Input<string>)
                  .apply((ca) => crypto.createHash("sha256").update(ca).digest("hex"))
            : undefined;
        const sslParams = tls ? `?sslmode=verify-full&sslrootcert=${caDir}/ca.crt` : "";

        const secretName = `${appName}-database`;
        this.databaseSecret = new k8s.core.v1.Secret(
            `${name}-database`,
            {
                metadata: { name: secretName, namespace: ns, labels },
                type: "Opaque",
                stringData: {
                    POSTGRES_HOST: db.host,
                    POSTGRES_PORT: String(db.port),
                    POSTGRES_DB: db.database,
                    POSTGRES_USER: db.user,
                    POSTGRES_PASSWORD: db.password,
                    // A password brought from stack secrets may hold any character: escape it for the URL.
                    DATABASE_URL: pulumi.interpolate`postgresql://${db.user}:${pulumi.output(db.password).apply(encodeURIComponent)}@${db.host}:${db.port}/${db.database}${sslParams}`,
                    // libpq reads these too, for anything that connects from the POSTGRES_* variables.
                    ...(tls ? { PGSSLMODE: "verify-full", PGSSLROOTCERT: `${caDir}/ca.crt` } : {}),
                },
            },
            inNamespace,
        );

        const podSecurity = {
            runAsNonRoot: true,
            runAsUser,
            runAsGroup: runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
        };
        // Read-only root: the image writes nothing at run time (bytecode is compiled at build time, gunicorn's worker
        // heartbeats go to /dev/shm), so nothing in a compromised process can change the code it runs.
        const containerSecurity = {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
        };
        const envFrom = [{ secretRef: { name: secretName } }];

        // Named after the release: a new image gets a new Job (migrations run again), an unchanged one keeps
        // its completed Job and nothing re-runs. One Job, not `flask db upgrade` in every replica, so
        // migrations never race.
        const jobName = migrationJobName(appName, image, migrationCommand);
        this.migrationJob = new k8s.batch.v1.Job(
            `${name}-migrate`,
            {
                metadata: {
                    name: jobName,
                    namespace: ns,
                    labels: { ...labels, "app.kubernetes.io/component": "migrations" },
                },
                spec: {
                    backoffLimit: 4,
                    activeDeadlineSeconds: 900,
                    template: {
                        metadata: {
                            labels: {
                                ...db.clientLabels,
                                "app.kubernetes.io/component": "migrations",
                                "app.kubernetes.io/part-of": partOf,
                            },
                        },
                        spec: {
                            restartPolicy: "Never",
                            automountServiceAccountToken: false,
                            imagePullSecrets,
                            securityContext: podSecurity,
                            containers: [
                                {
                                    name: "migrate",
                                    image,
                                    command: migrationCommand,
                                    envFrom,
                                    resources,
                                    securityContext: containerSecurity,
                                    volumeMounts: caMounts,
                                },
                            ],
                            volumes: caVolumes,
                        },
                    },
                },
            },
            {
                ...inNamespace,
                dependsOn: [
                    this.namespace,
                    this.databaseSecret,
                    ...pullSecrets,
                    ...(db.readiness ? [db.readiness] : []),
                    ...(this.caConfigMap ? [this.caConfigMap] : []),
                ],
                deleteBeforeReplace: true,
            },
        );

        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata: { name: appName, namespace: ns, labels },
                spec: {
                    replicas,
                    selector: { matchLabels: selector },
                    // A new pod must be Ready before an old one goes: no capacity is lost during a rollout.
                    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
                    template: {
                        // A new CA rolls the pods, so none keeps verifying against the old one.
                        metadata: {
                            labels: { ...labels, ...db.clientLabels },
                            ...(caChecksum ? { annotations: { "stateful-flask/postgres-ca-sha256": caChecksum } } : {}),
                        },
                        spec: {
                            automountServiceAccountToken: false,
                            imagePullSecrets,
                            securityContext: podSecurity,
                            topologySpreadConstraints: [
                                {
                                    maxSkew: 1,
                                    topologyKey: "kubernetes.io/hostname",
                                    whenUnsatisfiable: "ScheduleAnyway",
                                    labelSelector: { matchLabels: selector },
                                },
                            ],
                            containers: [
                                {
                                    name: "api",
                                    image,
                                    ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
                                    // The image binds gunicorn to it; the probes and the Service follow the named port.
                                    env: [{ name: API_PORT_ENV, value: String(port) }],
                                    envFrom,
                                    resources,
                                    securityContext: containerSecurity,
                                    readinessProbe: {
                                        httpGet: { path: API_HEALTH_PATH, port: "http" },
                                        periodSeconds: 5,
                                        failureThreshold: 3,
                                        timeoutSeconds: 3,
                                    },
                                    livenessProbe: {
                                        httpGet: { path: API_HEALTH_PATH, port: "http" },
                                        initialDelaySeconds: 10,
                                        periodSeconds: 20,
                                        failureThreshold: 3,
                                        timeoutSeconds: 5,
                                    },
                                    // Endpoints are removed asynchronously: keep serving a few seconds after the pod is
                                    // marked terminating so no request reaches a closed socket during a rollout.
                                    lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", "sleep 5"] } } },
                                    volumeMounts: caMounts,
                                },
                            ],
                            volumes: caVolumes,
                        },
                    },
                },
            },
            {
                ...inNamespace,
                dependsOn: [
                    this.namespace,
                    this.databaseSecret,
                    this.migrationJob,
                    ...pullSecrets,
                    ...(this.caConfigMap ? [this.caConfigMap] : []),
                ],
            },
        );

        this.service = new k8s.core.v1.Service(
            `${name}-service`,
            {
                metadata: { name: appName, namespace: ns, labels },
                spec: {
                    type: "ClusterIP",
                    selector,
                    ports: [{ name: "http", port: this.servicePort, targetPort: "http", protocol: "TCP" }],
                },
            },
            inNamespace,
        );

        this.registerOutputs({
            namespaceName: this.namespaceName,
            serviceName: this.serviceName,
            migrationJobName: jobName,
        });
    }
}
