/** The cluster section: a DOKS cluster this program creates, or an existing one reached through a kubeconfig context. */
import * as digitalocean from "@pulumi/digitalocean";
import { DOKS_DEFAULTS, MAINTENANCE_DAYS, NODE_COUNT_LIMITS, validateNodePool } from "../components/doks-cluster";
import {
    ConfigError,
    validateAddressList,
    validateCidr,
    validateName,
    validateOneOf,
    validateTimeOfDay,
} from "../components/validate";
import { PROJECT, type Reader } from "./common";

export const CLUSTER_MODES = ["digitalocean", "existing"] as const;
export type ClusterMode = (typeof CLUSTER_MODES)[number];

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
    readonly maintenanceDay: (typeof MAINTENANCE_DAYS)[number];
    readonly maintenanceStartTime: string;
    readonly vpcIpRange: string;
    readonly clusterSubnet: string;
    readonly serviceSubnet: string;
    /** Public IPv4 addresses or CIDR blocks allowed to reach the Kubernetes API; empty leaves the control-plane firewall off. */
    readonly controlPlaneAllowedAddresses: readonly string[];
}

export interface ExistingClusterConfig {
    readonly mode: "existing";
    /** The kubeconfig context to use; the current context when unset. */
    readonly kubeconfigContext?: string;
}

export type ClusterConfig = DigitalOceanClusterConfig | ExistingClusterConfig;

export function parseCluster(r: Reader): ClusterConfig {
    const mode = validateOneOf("clusterMode", r.string("clusterMode", "digitalocean"), CLUSTER_MODES);
    if (mode === "existing") {
        if (r.isSet("controlPlaneAllowedAddresses")) {
            throw new ConfigError(
                "controlPlaneAllowedAddresses",
                r.string("controlPlaneAllowedAddresses"),
                "the control-plane firewall is a setting of the DOKS cluster this program creates (clusterMode digitalocean); restrict an existing cluster's API where that cluster is managed, and unset this key",
            );
        }
        return { mode, kubeconfigContext: r.string("kubeconfigContext") };
    }

    const d = DOKS_DEFAULTS;
    const { min, max } = NODE_COUNT_LIMITS;
    const pool = validateNodePool({
        nodeCount: r.optionalInteger("nodeCount", min, max),
        autoScale: r.boolean("autoScale", d.autoScale),
        minNodes: r.optionalInteger("minNodes", min, max),
        maxNodes: r.optionalInteger("maxNodes", min, max),
    });
    const prefix = r.string("kubernetesVersionPrefix", "1.35.");
    if (!/^\d+\.\d+(\.\d+)?\.?$/.test(prefix)) {
        throw new ConfigError("kubernetesVersionPrefix", prefix, "expected a version prefix such as 1.35. or 1.35.1");
    }
    return {
        mode,
        name: validateName("clusterName", r.string("clusterName", PROJECT)),
        region: validateOneOf("region", r.string("region", "fra1"), DO_REGIONS),
        kubernetesVersionPrefix: prefix,
        nodeSize: r.string("nodeSize", d.nodeSize),
        ...pool,
        haControlPlane: r.boolean("haControlPlane", d.haControlPlane),
        surgeUpgrade: r.boolean("surgeUpgrade", d.surgeUpgrade),
        autoUpgrade: r.boolean("autoUpgrade", d.autoUpgrade),
        maintenanceDay: validateOneOf("maintenanceDay", r.string("maintenanceDay", d.maintenanceDay), MAINTENANCE_DAYS),
        maintenanceStartTime: validateTimeOfDay(
            "maintenanceStartTime",
            r.string("maintenanceStartTime", d.maintenanceStartTime),
        ),
        vpcIpRange: validateCidr("vpcIpRange", r.string("vpcIpRange", d.vpcIpRange)),
        clusterSubnet: validateCidr("clusterSubnet", r.string("clusterSubnet", d.clusterSubnet)),
        serviceSubnet: validateCidr("serviceSubnet", r.string("serviceSubnet", d.serviceSubnet)),
        controlPlaneAllowedAddresses: validateAddressList(
            "controlPlaneAllowedAddresses",
            r.string("controlPlaneAllowedAddresses", ""),
        ),
    };
}
