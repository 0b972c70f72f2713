/**
 * The only module that reads `pulumi.Config`. Every key is declared (type, description, default) in
 * Pulumi.yaml; here each one is parsed and validated once, before any resource is registered, and the
 * result is frozen. `parseConfig` is pure so the rules are tested without the engine.
 */
import * as pulumi from "@pulumi/pulumi";
import * as digitalocean from "@pulumi/digitalocean";
import {
    ConfigError, validateCidr, validateEmail, validateHost, validateHttpPath, validateInteger, validateName,
    validateOneOf, validatePinnedImage, validateStorageSize, validateTimeOfDay,
} from "./components/validate";
import { MAINTENANCE_DAYS } from "./components/doks-cluster";

export const PROJECT = "stateful-flask";

export const CLUSTER_MODES = ["digitalocean", "existing"] as const;
export type ClusterMode = typeof CLUSTER_MODES[number];
export const INGRESS_CONTROLLERS = ["traefik", "existing", "none"] as const;
export type IngressController = typeof INGRESS_CONTROLLERS[number];

// DigitalOcean regions with Kubernetes: the provider's own enum, plus atl1, which opened after the enum was
// last generated. Keeping the SDK as the source means new SDK releases extend the list without code changes.
export const DO_REGIONS: readonly string[] = [...new Set([...Object.values(digitalocean.Region), "atl1"])].sort();

export interface DigitalOceanClusterConfig {
    readonly mode: "digitalocean";
    readonly name: string;
    readonly region: string;
    /** A prefix such as `1.35.`; the newest DOKS release matching it is used. */
    readonly kubernetesVersionPrefix: string;
    readonly nodeSize: string;
    readonly nodeCount: number;
    readonly autoScale: boolean;
    readonly minNodes: number;
    readonly maxNodes: number;
    readonly haControlPlane: boolean;
    readonly surgeUpgrade: boolean;
    readonly autoUpgrade: boolean;
    readonly maintenanceDay: typeof MAINTENANCE_DAYS[number];
    readonly maintenanceStartTime: string;
    readonly vpcIpRange: string;
    readonly clusterSubnet: string;
    readonly serviceSubnet: string;
}

export interface ExistingClusterConfig {
    readonly mode: "existing";
    /** The kubeconfig context to use; the current context when unset. */
    readonly kubeconfigContext?: string;
}

export interface PostgresConfig {
    readonly namespace: string;
    readonly replicas: number;
    /** The primary's ordinal; changed only by the manual failover runbook. */
    readonly primaryOrdinal: number;
    readonly image: string;
    readonly storageSize: string;
    readonly storageClass: string;
    readonly database: string;
    readonly user: string;
    /** The pod network allowed to open replication connections. */
    readonly replicationCidr: string;
}

export interface ApiConfig {
    readonly namespace: string;
    readonly name: string;
    readonly image: string;
    readonly replicas: number;
    readonly port: number;
    readonly healthPath: string;
}

export interface IngressConfig {
    readonly controller: IngressController;
    readonly className: string;
    readonly host: string;
    readonly tls: boolean;
    readonly tlsEmail?: string;
    readonly manageDns: boolean;
}

export interface AppConfig {
    readonly stack: string;
    /** The `app.kubernetes.io/part-of` value shared by the API and its database (the policy pack pairs on it). */
    readonly partOf: string;
    /** Protect data-bearing resources so that neither `pulumi destroy` nor a replacement drops data. */
    readonly protectData: boolean;
    readonly cluster: DigitalOceanClusterConfig | ExistingClusterConfig;
    readonly postgres: PostgresConfig;
    readonly api: ApiConfig;
    readonly ingress: IngressConfig;
}

/** Reads one raw config value (as the Pulumi CLI stores it: a string) by key, without the project prefix. */
export type ConfigReader = (key: string) => string | undefined;

function deepFreeze<T>(value: T): T {
    if (value && typeof value === "object") {
        Object.values(value).forEach(deepFreeze);
        Object.freeze(value);
    }
    return value;
}

class Reader {
    constructor(private readonly read: ConfigReader) {}

    string(key: string, fallback: string): string;
    string(key: string): string | undefined;
    string(key: string, fallback?: string): string | undefined {
        const raw = this.read(key);
        return raw === undefined || raw === "" ? fallback : raw;
    }

    required(key: string, allowed: string): string {
        const value = this.string(key);
        if (value === undefined) {
            throw new ConfigError(key, value, `this key is required: ${allowed} (pulumi config set ${key} <value>)`);
        }
        return value;
    }

    integer(key: string, fallback: number, min: number, max?: number): number {
        const raw = this.string(key);
        // Number("") and Number(" ") are 0 and Number("1e1") is 10: only plain decimal integers are accepted.
        const value = raw === undefined ? fallback : /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
        return validateInteger(key, value, min, max);
    }

    boolean(key: string, fallback: boolean): boolean {
        const raw = this.string(key);
        if (raw === undefined) {
            return fallback;
        }
        if (raw === "true" || raw === "false") {
            return raw === "true";
        }
        throw new ConfigError(key, raw, "expected true or false");
    }
}

/** Parses and validates the whole configuration. Pure: all input comes from `read`. */
export function parseConfig(stack: string, read: ConfigReader): AppConfig {
    const r = new Reader(read);
    const mode = validateOneOf("clusterMode", r.string("clusterMode", "digitalocean"), CLUSTER_MODES);

    let cluster: DigitalOceanClusterConfig | ExistingClusterConfig;
    if (mode === "digitalocean") {
        const autoScale = r.boolean("autoScale", false);
        const nodeCount = r.integer("nodeCount", 3, 1, 512);
        const minNodes = r.integer("minNodes", nodeCount, 1, 512);
        const maxNodes = r.integer("maxNodes", Math.max(nodeCount, minNodes), 1, 512);
        if (autoScale && maxNodes < minNodes) {
            throw new ConfigError("maxNodes", maxNodes, `expected at least minNodes (${minNodes})`);
        }
        const prefix = r.string("kubernetesVersionPrefix", "1.35.");
        if (!/^\d+\.\d+(\.\d+)?\.?$/.test(prefix)) {
            throw new ConfigError("kubernetesVersionPrefix", prefix, "expected a version prefix such as 1.35. or 1.35.1");
        }
        cluster = {
            mode,
            name: validateName("clusterName", r.string("clusterName", PROJECT)),
            region: validateOneOf("region", r.string("region", "fra1"), DO_REGIONS),
            kubernetesVersionPrefix: prefix,
            nodeSize: r.string("nodeSize", "s-2vcpu-4gb"),
            nodeCount,
            autoScale,
            minNodes,
            maxNodes,
            haControlPlane: r.boolean("haControlPlane", false),
            surgeUpgrade: r.boolean("surgeUpgrade", true),
            autoUpgrade: r.boolean("autoUpgrade", true),
            maintenanceDay: validateOneOf("maintenanceDay", r.string("maintenanceDay", "sunday"), MAINTENANCE_DAYS),
            maintenanceStartTime: validateTimeOfDay("maintenanceStartTime", r.string("maintenanceStartTime", "04:00")),
            vpcIpRange: validateCidr("vpcIpRange", r.string("vpcIpRange", "10.110.0.0/20")),
            clusterSubnet: validateCidr("clusterSubnet", r.string("clusterSubnet", "10.244.0.0/16")),
            serviceSubnet: validateCidr("serviceSubnet", r.string("serviceSubnet", "10.245.0.0/16")),
        };
    } else {
        cluster = { mode, kubeconfigContext: r.string("kubeconfigContext") };
    }

    const defaultPodCidr = cluster.mode === "digitalocean" ? cluster.clusterSubnet : "10.244.0.0/16";
    const postgresReplicas = r.integer("postgresReplicas", 1, 1, 9);
    const postgres: PostgresConfig = {
        namespace: validateName("postgresNamespace", r.string("postgresNamespace", "postgres")),
        replicas: postgresReplicas,
        // Scaling down removes the highest ordinals: the primary's must stay below the replica count.
        primaryOrdinal: r.integer("postgresPrimaryOrdinal", 0, 0, postgresReplicas - 1),
        image: validatePinnedImage("postgresImage", r.string("postgresImage", "postgres:15.20-bookworm")),
        storageSize: validateStorageSize("postgresStorageSize", r.string("postgresStorageSize", "5Gi")),
        storageClass: validateName("storageClass", r.string("storageClass", "do-block-storage"), 253),
        database: validateName("postgresDatabase", r.string("postgresDatabase", "stateful-flask-db")),
        user: validateName("postgresUser", r.string("postgresUser", "stateful-flask-user")),
        replicationCidr: validateCidr("replicationCidr", r.string("replicationCidr", defaultPodCidr)),
    };

    const api: ApiConfig = {
        namespace: validateName("apiNamespace", r.string("apiNamespace", "stateful-namespace")),
        name: validateName("apiName", r.string("apiName", "stateful-flask"), 40),
        image: validatePinnedImage("apiImage",
            r.required("apiImage", "the Flask API image, pinned to a release tag such as registry.example.com/stateful-flask:v1.0.0")),
        replicas: r.integer("apiReplicas", 1, 1, 50),
        port: r.integer("apiPort", 5000, 1, 65535),
        healthPath: validateHttpPath("apiHealthPath", r.string("apiHealthPath", "/healthz")),
    };

    const controller = validateOneOf("ingressController", r.string("ingressController", "traefik"), INGRESS_CONTROLLERS);
    const tls = r.boolean("tlsEnabled", false);
    const manageDns = r.boolean("manageDns", false);
    if (manageDns && cluster.mode !== "digitalocean") {
        throw new ConfigError("manageDns", true, "a DigitalOcean DNS record needs clusterMode digitalocean; set manageDns false");
    }
    if (manageDns && controller !== "traefik") {
        throw new ConfigError("manageDns", true, "the A record points at the load balancer of the ingress controller this program installs; set ingressController traefik");
    }
    const ingress: IngressConfig = {
        controller,
        className: validateName("ingressClassName", r.string("ingressClassName", "traefik")),
        host: controller === "none" ? validateHost("ingressHost", r.string("ingressHost", "stateful-flask.localtest.me"))
            : validateHost("ingressHost", r.required("ingressHost", "the public host name of the API, such as drexii.me")),
        tls,
        tlsEmail: tls ? validateEmail("tlsEmail", r.required("tlsEmail", "the e-mail address for the Let's Encrypt account")) : undefined,
        manageDns,
    };
    if (tls && controller === "none") {
        throw new ConfigError("tlsEnabled", true, "TLS is served by the ingress; set ingressController traefik or existing");
    }

    return deepFreeze({
        stack,
        partOf: validateName("partOf", r.string("partOf", PROJECT)),
        protectData: r.boolean("protectData", true),
        cluster,
        postgres,
        api,
        ingress,
    });
}

/**
 * The DigitalOcean API token, as a secret, from the same two places the provider reads. The program needs it
 * too, to build a kubeconfig that does not expire (components/doks-cluster.ts).
 */
export function digitalOceanToken(): pulumi.Output<string> {
    const fromConfig = new pulumi.Config("digitalocean").getSecret("token");
    if (fromConfig !== undefined) {
        return fromConfig;
    }
    const fromEnv = process.env.DIGITALOCEAN_TOKEN || process.env.DIGITALOCEAN_ACCESS_TOKEN;
    if (!fromEnv) {
        throw new ConfigError("digitalocean:token", undefined,
            "clusterMode digitalocean needs a DigitalOcean API token: pulumi config set --secret digitalocean:token <token>, or DIGITALOCEAN_TOKEN in the environment");
    }
    return pulumi.secret(fromEnv);
}

/** Reads this stack's configuration once. Throws `ConfigError` before any resource is registered. */
export function loadConfig(): AppConfig {
    const config = new pulumi.Config(PROJECT);
    return parseConfig(pulumi.getStack(), key => config.get(key));
}
