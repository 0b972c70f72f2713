/** Image pull access: read-only DOCR credentials for each image on registry.digitalocean.com. Rules: components/registry-access.ts. */
import { docrRegistryName } from "../components/registry-access";
import type { Reader } from "./common";
import type { ClusterConfig } from "./cluster";

/**
 * The DigitalOcean Container Registry each workload pulls its image from with read-only credentials (a pull
 * Secret in its namespace); unset when its image is on another registry or `docrPullAccess` is false.
 */
export interface RegistryAccessConfig {
    readonly api?: string;
    readonly postgres?: string;
}

export function parseRegistryAccess(
    r: Reader,
    cluster: ClusterConfig,
    images: { api: string; postgres: string },
): RegistryAccessConfig {
    // Chosen by each image's registry host (an image on DOCR's host that names no registry is refused either way).
    // Off by default in existing mode: a local cluster has its images loaded already and no DigitalOcean account;
    // an existing cluster that pulls from DOCR turns it on.
    const registries = {
        api: docrRegistryName(images.api, "apiImage"),
        postgres: docrRegistryName(images.postgres, "postgresImage"),
    };
    return r.boolean("docrPullAccess", cluster.mode === "digitalocean") ? registries : {};
}
