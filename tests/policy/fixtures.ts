/**
 * A compliant stack shaped like the program's (contract of issue 3): the Postgres StatefulSet with its headless,
 * read-write and read-only Services, the API Deployment and its migration Job. Each call returns a fresh copy,
 * so a test mutates one field and expects exactly one violation.
 */
import type { FakeResource } from "./harness";

export const T = {
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    deployment: "kubernetes:apps/v1:Deployment",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    job: "kubernetes:batch/v1:Job",
    cronJob: "kubernetes:batch/v1:CronJob",
    service: "kubernetes:core/v1:Service",
    hpa: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    deploymentPatch: "kubernetes:apps/v1:DeploymentPatch",
    statefulSetPatch: "kubernetes:apps/v1:StatefulSetPatch",
    hpaPatch: "kubernetes:autoscaling/v2:HorizontalPodAutoscalerPatch",
    namespace: "kubernetes:core/v1:Namespace",
    release: "kubernetes:helm.sh/v3:Release",
} as const;

const dbLabels = () => ({
    app: "postgres",
    "app.kubernetes.io/name": "postgres",
    "app.kubernetes.io/component": "database",
    "app.kubernetes.io/part-of": "stateful-flask",
    "app.kubernetes.io/managed-by": "pulumi",
});

const apiLabels = () => ({
    app: "stateful-flask",
    "app.kubernetes.io/name": "stateful-flask",
    "app.kubernetes.io/component": "api",
    "app.kubernetes.io/part-of": "stateful-flask",
});

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const secretEnv = (name: string, key = name) => ({
    name,
    valueFrom: { secretKeyRef: { name: "postgres-credentials", key } },
});

/** The Postgres StatefulSet as components/postgres.ts declares it: Patroni, one member, synchronous mode on. */
export function statefulSet(): FakeResource {
    return {
        type: T.statefulSet,
        name: "postgres-statefulset",
        props: {
            apiVersion: "apps/v1",
            kind: "StatefulSet",
            metadata: { name: "postgres", namespace: "postgres", labels: dbLabels() },
            spec: {
                serviceName: "postgres-headless",
                replicas: 1,
                selector: { matchLabels: { app: "postgres" } },
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                template: {
                    metadata: { labels: dbLabels() },
                    spec: {
                        securityContext: { runAsNonRoot: true, runAsUser: 999, fsGroup: 999 },
                        containers: [
                            {
                                name: "postgres",
                                image: "registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1",
                                ports: [
                                    { name: "postgresql", containerPort: 5432, protocol: "TCP" },
                                    { name: "patroni", containerPort: 8008, protocol: "TCP" },
                                ],
                                // The environment components/postgres-pod.ts gives Patroni (images/postgres/pod/README.md).
                                env: [
                                    fieldEnv("POD_NAME", "metadata.name"),
                                    fieldEnv("POD_NAMESPACE", "metadata.namespace"),
                                    fieldEnv("POD_IP", "status.podIP"),
                                    { name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" },
                                    { name: "SCOPE", value: "postgres" },
                                    { name: "KUBERNETES_LABELS", value: '{"app":"postgres"}' },
                                    { name: "SCOPE_LABEL", value: "app.kubernetes.io/instance" },
                                    { name: "APP_USER", value: "stateful-flask-user" },
                                    { name: "APP_DATABASE", value: "stateful-flask-db" },
                                    { name: "REPLICATION_USER", value: "replicator" },
                                    { name: "POD_CIDR", value: "10.244.0.0/16" },
                                    { name: "SYNCHRONOUS_MODE", value: "on" },
                                    { name: "TTL", value: "7" },
                                    { name: "LOOP_WAIT", value: "1" },
                                    { name: "RETRY_TIMEOUT", value: "3" },
                                    { name: "MAX_SLOT_WAL_KEEP_SIZE", value: "1GB" },
                                    secretEnv("SUPERUSER_PASSWORD"),
                                    secretEnv("REPLICATION_PASSWORD"),
                                    secretEnv("APP_PASSWORD", "POSTGRES_PASSWORD"),
                                    secretEnv("API_PASSWORD", "PATRONI_API_PASSWORD"),
                                ],
                                readinessProbe: { httpGet: { path: "/readiness", port: "patroni" }, periodSeconds: 5 },
                                resources: {
                                    requests: { cpu: "250m", memory: "512Mi" },
                                    limits: { cpu: "1", memory: "1Gi" },
                                },
                            },
                        ],
                    },
                },
                volumeClaimTemplates: [
                    {
                        metadata: { name: "postgredb-volume" },
                        spec: {
                            accessModes: ["ReadWriteOnce"],
                            storageClassName: "do-block-storage",
                            resources: { requests: { storage: "5Gi" } },
                        },
                    },
                ],
            },
        },
    };
}

function service(name: string, spec: Record<string, any>): FakeResource {
    return {
        type: T.service,
        name: `${name}-service`,
        props: {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name, namespace: "postgres", labels: dbLabels() },
            spec,
        },
    };
}

export const headlessService = () =>
    service("postgres-headless", { clusterIP: "None", selector: { app: "postgres" }, ports: [{ port: 5432 }] });
export const primaryService = () =>
    service("postgres", {
        selector: { app: "postgres", "statefulset.kubernetes.io/pod-name": "postgres-0" },
        ports: [{ port: 5432 }],
    });
export const readOnlyService = () => service("postgres-ro", { selector: { app: "postgres" }, ports: [{ port: 5432 }] });

export function deployment(): FakeResource {
    return {
        type: T.deployment,
        name: "api-deployment",
        props: {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "stateful-flask", namespace: "stateful-namespace", labels: apiLabels() },
            spec: {
                replicas: 1,
                selector: { matchLabels: { app: "stateful-flask" } },
                template: {
                    metadata: { labels: apiLabels() },
                    spec: {
                        securityContext: { runAsNonRoot: true, runAsUser: 10001 },
                        initContainers: [{ name: "wait-for-db", image: "postgres:17.6-bookworm" }],
                        containers: [
                            {
                                name: "api",
                                image: "registry.digitalocean.com/drexii/stateful-flask:v1.0.0",
                                readinessProbe: { httpGet: { path: "/healthz", port: "http" } },
                                resources: { requests: { cpu: "100m", memory: "128Mi" } },
                            },
                        ],
                    },
                },
            },
        },
    };
}

export function migrationJob(): FakeResource {
    return {
        type: T.job,
        name: "api-migrate",
        props: {
            apiVersion: "batch/v1",
            kind: "Job",
            metadata: {
                name: "stateful-flask-migrate-adb446bb56",
                namespace: "stateful-namespace",
                labels: { ...apiLabels(), "app.kubernetes.io/component": "migrations" },
            },
            spec: {
                template: {
                    spec: {
                        restartPolicy: "Never",
                        securityContext: { runAsNonRoot: true, runAsUser: 10001 },
                        // Run to completion: no readiness probe, no requests (the hygiene policies exempt Jobs).
                        containers: [
                            {
                                name: "migrate",
                                image: "registry.digitalocean.com/drexii/stateful-flask:v1.0.0",
                                command: ["flask", "db", "upgrade"],
                            },
                        ],
                    },
                },
            },
        },
    };
}

/** Resources no policy governs; policies must leave them alone. */
export function bystanders(): FakeResource[] {
    return [
        { type: T.namespace, name: "postgres-namespace", props: { metadata: { name: "postgres" } } },
        {
            type: T.release,
            name: "ingress-traefik",
            props: { chart: "traefik", version: "37.1.2", values: { image: { tag: "latest" } } },
        },
        {
            type: "digitalocean:index/kubernetesCluster:KubernetesCluster",
            name: "stateful-flask",
            props: { region: "fra1" },
        },
    ];
}

/** The whole compliant stack. */
export function stack(): FakeResource[] {
    return [
        statefulSet(),
        headlessService(),
        primaryService(),
        readOnlyService(),
        deployment(),
        migrationJob(),
        ...bystanders(),
    ];
}

/** A copy of `r` with `mutate` applied to its props. */
export function mutated(r: FakeResource, mutate: (props: any) => void): FakeResource {
    const copy: FakeResource = { ...r, props: structuredClone(r.props) };
    mutate(copy.props);
    return copy;
}

/** The compliant stack with the resource named `name` replaced by `mutate`d copy. */
export function stackWith(name: string, mutate: (props: any) => void): FakeResource[] {
    const resources = stack();
    const i = resources.findIndex((r) => r.name === name);
    if (i < 0) {
        throw new Error(`fixture has no resource ${name}`);
    }
    resources[i] = mutated(resources[i], mutate);
    return resources;
}

/**
 * A server-side-apply patch of the program's API Deployment (or, with `name`/`namespace`, of another one): only the
 * fields given are set on the live object.
 */
export function deploymentPatch(spec: Record<string, any>, metadata: Record<string, any> = {}): FakeResource {
    return {
        type: T.deploymentPatch,
        name: `${metadata.name ?? "stateful-flask"}-patch`,
        props: {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "stateful-flask", namespace: "stateful-namespace", ...metadata },
            spec,
        },
    };
}

/** A patch of the Postgres StatefulSet: only the fields given. */
export function statefulSetPatch(spec: Record<string, any>): FakeResource {
    return {
        type: T.statefulSetPatch,
        name: "postgres-patch",
        props: {
            apiVersion: "apps/v1",
            kind: "StatefulSet",
            metadata: { name: "postgres", namespace: "postgres" },
            spec,
        },
    };
}
