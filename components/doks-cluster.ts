import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
    ConfigError,
    validateAddress,
    validateCidr,
    validateInteger,
    validateOneOf,
    validateTimeOfDay,
} from "./validate";

/** Arguments of {@link DoksCluster}. */
export interface DoksClusterArgs {
    /** DigitalOcean region slug, e.g. `fra1`. */
    readonly region: string;
    /** The DOKS version slug, e.g. from {@link resolveKubernetesVersion}. */
    readonly kubernetesVersion: string;
    /** Droplet size of the default node pool. @default "s-2vcpu-4gb" */
    readonly nodeSize?: string;
    /** Node count when autoscaling is off. @default 3 */
    readonly nodeCount?: number;
    /** Let the cluster autoscaler size the pool between `minNodes` and `maxNodes`. @default false */
    readonly autoScale?: boolean;
    /** Autoscaling lower bound. @default nodeCount */
    readonly minNodes?: number;
    /** Autoscaling upper bound. @default nodeCount */
    readonly maxNodes?: number;
    /** Highly available control plane (cannot be turned off once on). @default false */
    readonly haControlPlane?: boolean;
    /** Surge upgrades: new nodes are added before old ones drain. @default true */
    readonly surgeUpgrade?: boolean;
    /** Let DigitalOcean apply patch releases in the maintenance window. @default true */
    readonly autoUpgrade?: boolean;
    /** Maintenance window day (`any`, `monday` … `sunday`). @default "sunday" */
    readonly maintenanceDay?: string;
    /** Maintenance window start, HH:MM UTC. @default "04:00" */
    readonly maintenanceStartTime?: string;
    /** The VPC's IP range. @default "10.110.0.0/20" */
    readonly vpcIpRange?: string;
    /** Pod network. @default "10.244.0.0/16" */
    readonly clusterSubnet?: string;
    /** Service network. @default "10.245.0.0/16" */
    readonly serviceSubnet?: string;
    /**
     * Public IPv4 addresses or CIDR blocks allowed to reach the Kubernetes API (the DOKS control-plane firewall;
     * the cluster's own nodes are always allowed). Empty turns the firewall off. Whatever runs `pulumi up` must be
     * in the list. @default [] (no firewall: the API is reachable from anywhere, authenticated)
     */
    readonly controlPlaneAllowedAddresses?: readonly string[];
    /**
     * The DigitalOcean API token the kubeconfig authenticates with (a secret). DOKS accepts DigitalOcean API
     * tokens as bearer tokens; using the stack's own token instead of the 7-day token DigitalOcean issues with
     * each kubeconfig download keeps previews and refreshes working after a week.
     */
    readonly apiToken: pulumi.Input<string>;
    /** Protect the cluster against `pulumi destroy` and replacement. @default true */
    readonly protect?: boolean;
}

/** The defaults of {@link DoksClusterArgs}; config.ts applies the same ones to unset stack keys. */
export const DOKS_DEFAULTS = {
    nodeSize: "s-2vcpu-4gb",
    nodeCount: 3,
    autoScale: false,
    haControlPlane: false,
    surgeUpgrade: true,
    autoUpgrade: true,
    maintenanceDay: "sunday",
    maintenanceStartTime: "04:00",
    vpcIpRange: "10.110.0.0/20",
    clusterSubnet: "10.244.0.0/16",
    serviceSubnet: "10.245.0.0/16",
} as const;

/** Nodes in a pool, as DOKS allows them. */
export const NODE_COUNT_LIMITS = { min: 1, max: 512 } as const;

/** The node pool's size settings with their defaults applied; throws on counts out of range or min > max. */
export function validateNodePool(pool: {
    nodeCount?: number;
    autoScale?: boolean;
    minNodes?: number;
    maxNodes?: number;
}) {
    const { min, max } = NODE_COUNT_LIMITS;
    const nodeCount = validateInteger("nodeCount", pool.nodeCount ?? DOKS_DEFAULTS.nodeCount, min, max);
    const autoScale = pool.autoScale ?? DOKS_DEFAULTS.autoScale;
    const minNodes = validateInteger("minNodes", pool.minNodes ?? nodeCount, min, max);
    const maxNodes = validateInteger("maxNodes", pool.maxNodes ?? Math.max(nodeCount, minNodes), min, max);
    if (autoScale && maxNodes < minNodes) {
        throw new ConfigError("maxNodes", maxNodes, `expected at least minNodes (${minNodes})`);
    }
    return { nodeCount, autoScale, minNodes, maxNodes };
}

export const MAINTENANCE_DAYS = [
    "any",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
] as const;

/**
 * The newest DOKS release whose slug starts with `prefix` (`1.35.` gives e.g. `1.35.4-do.1`): never a
 * hard-coded version that goes stale. Awaited before any resource is registered, so a prefix DigitalOcean
 * does not offer fails the program cleanly, naming what it does offer.
 */
export async function resolveKubernetesVersion(prefix: string, opts?: pulumi.InvokeOptions): Promise<string> {
    const versions = await digitalocean.getKubernetesVersions({ versionPrefix: prefix }, opts);
    if (!versions.latestVersion) {
        const offered = (await digitalocean.getKubernetesVersions({}, opts)).validVersions;
        throw new ConfigError(
            "kubernetesVersionPrefix",
            prefix,
            `DigitalOcean offers no Kubernetes release with this prefix; it offers ${offered.join(", ") || "none"}`,
        );
    }
    return versions.latestVersion;
}

/** Builds a kubeconfig that authenticates with a long-lived token rather than the cluster's 7-day credentials. */
export function buildKubeconfig(name: string, endpoint: string, caCertificateBase64: string, token: string): string {
    return JSON.stringify(
        {
            apiVersion: "v1",
            kind: "Config",
            clusters: [{ name, cluster: { server: endpoint, "certificate-authority-data": caCertificateBase64 } }],
            users: [{ name: `${name}-admin`, user: { token } }],
            contexts: [{ name, context: { cluster: name, user: `${name}-admin` } }],
            "current-context": name,
        },
        null,
        2,
    );
}

/**
 * A DigitalOcean Kubernetes cluster in its own VPC, and a Kubernetes provider for everything deployed into it.
 */
export class DoksCluster extends pulumi.ComponentResource {
    public readonly vpc: digitalocean.Vpc;
    public readonly cluster: digitalocean.KubernetesCluster;
    /** The Kubernetes version DOKS runs, resolved from the prefix. */
    public readonly version: pulumi.Output<string>;
    /** A kubeconfig (secret) that keeps working after DigitalOcean's 7-day credentials expire. */
    public readonly kubeconfig: pulumi.Output<string>;
    public readonly provider: k8s.Provider;

    constructor(name: string, args: DoksClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:infra:DoksCluster", name, {}, opts);

        const { nodeCount, autoScale, minNodes, maxNodes } = validateNodePool(args);
        const d = DOKS_DEFAULTS;
        const maintenanceDay = validateOneOf(
            "maintenanceDay",
            args.maintenanceDay ?? d.maintenanceDay,
            MAINTENANCE_DAYS,
        );
        const maintenanceStartTime = validateTimeOfDay(
            "maintenanceStartTime",
            args.maintenanceStartTime ?? d.maintenanceStartTime,
        );
        const vpcIpRange = validateCidr("vpcIpRange", args.vpcIpRange ?? d.vpcIpRange);
        const clusterSubnet = validateCidr("clusterSubnet", args.clusterSubnet ?? d.clusterSubnet);
        const serviceSubnet = validateCidr("serviceSubnet", args.serviceSubnet ?? d.serviceSubnet);
        const allowedAddresses = (args.controlPlaneAllowedAddresses ?? []).map((a) =>
            validateAddress("controlPlaneAllowedAddresses", a),
        );
        const protect = args.protect ?? true;

        this.vpc = new digitalocean.Vpc(
            `${name}-vpc`,
            {
                region: args.region,
                ipRange: vpcIpRange,
                description: `Network of the ${name} Kubernetes cluster`,
            },
            { parent: this },
        );

        this.version = pulumi.output(args.kubernetesVersion);

        this.cluster = new digitalocean.KubernetesCluster(
            name,
            {
                region: args.region,
                version: this.version,
                vpcUuid: this.vpc.id,
                clusterSubnet,
                serviceSubnet,
                ha: args.haControlPlane ?? d.haControlPlane,
                surgeUpgrade: args.surgeUpgrade ?? d.surgeUpgrade,
                autoUpgrade: args.autoUpgrade ?? d.autoUpgrade,
                maintenancePolicy: { day: maintenanceDay, startTime: maintenanceStartTime },
                // Stated even when off: the provider keeps the cluster's current firewall when the block is absent, so
                // removing the addresses would otherwise leave an earlier firewall (and its old list) in place.
                controlPlaneFirewall: { enabled: allowedAddresses.length > 0, allowedAddresses },
                // Volumes and load balancers created through Kubernetes outlive the cluster: a deleted cluster must
                // never take the database volumes with it.
                destroyAllAssociatedResources: false,
                nodePool: {
                    // The pool name is part of the cluster's identity in DigitalOcean; renaming replaces every node.
                    name: `${name}-default`,
                    size: args.nodeSize ?? d.nodeSize,
                    autoScale,
                    ...(autoScale ? { minNodes, maxNodes } : { nodeCount }),
                    labels: { "stateful-flask/pool": "default" },
                },
                tags: [name],
            },
            { parent: this, protect },
        );

        this.kubeconfig = pulumi.secret(
            pulumi
                .all([this.cluster.name, this.cluster.endpoint, this.cluster.kubeConfigs, args.apiToken])
                .apply(([clusterName, endpoint, kubeConfigs, token]) =>
                    buildKubeconfig(`do-${clusterName}`, endpoint, kubeConfigs[0].clusterCaCertificate, token),
                ),
        );

        this.provider = new k8s.Provider(
            `${name}-k8s`,
            {
                kubeconfig: this.kubeconfig,
                // Unreachable clusters must fail the update, never be read as "every resource is gone".
                deleteUnreachable: false,
            },
            { parent: this },
        );

        this.registerOutputs({
            vpc: this.vpc,
            cluster: this.cluster,
            version: this.version,
            kubeconfig: this.kubeconfig,
            provider: this.provider,
        });
    }
}
