/**
 * The only module that reads `pulumi.Config`. Every key is declared (type, description) in Pulumi.yaml; each section
 * is parsed and validated once by its module in config/ (cluster, postgres, api, registry, ingress, backup), with
 * the rules and defaults the components export, before any resource is registered; the result is frozen.
 * `parseConfig` is pure so the rules are tested without the engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, validateName } from "./components/validate";
import { type ApiConfig, parseApi } from "./config/api";
import { type BackupConfig, parseBackup } from "./config/backup";
import { type ClusterConfig, parseCluster } from "./config/cluster";
import { type ConfigReader, PROJECT, Reader, type SecretReader, deepFreeze } from "./config/common";
import { type IngressConfig, parseIngress } from "./config/ingress";
import { type PostgresConfig, parsePostgres } from "./config/postgres";
import { type RegistryAccessConfig, parseRegistryAccess } from "./config/registry";

export { PROJECT };
export type {
    ApiConfig,
    BackupConfig,
    ClusterConfig,
    ConfigReader,
    IngressConfig,
    PostgresConfig,
    RegistryAccessConfig,
    SecretReader,
};

export interface AppConfig {
    readonly stack: string;
    /** The `app.kubernetes.io/part-of` value shared by the API and its database (the policy pack pairs on it). */
    readonly partOf: string;
    /** Protect data-bearing resources so that neither `pulumi destroy` nor a replacement drops data. */
    readonly protectData: boolean;
    readonly cluster: ClusterConfig;
    readonly postgres: PostgresConfig;
    readonly api: ApiConfig;
    readonly registryAccess: RegistryAccessConfig;
    readonly ingress: IngressConfig;
    readonly backup: BackupConfig;
}

/** Parses and validates the whole configuration. Pure: all input comes from `read` and `readSecret`. */
export function parseConfig(stack: string, read: ConfigReader, readSecret: SecretReader = () => undefined): AppConfig {
    const r = new Reader(read);
    const cluster = parseCluster(r);
    const postgres = parsePostgres(r, readSecret, cluster);
    const api = parseApi(r);
    return deepFreeze({
        stack,
        partOf: validateName("partOf", r.string("partOf", PROJECT)),
        protectData: r.boolean("protectData", true),
        cluster,
        postgres,
        api,
        registryAccess: parseRegistryAccess(r, cluster, { api: api.image, postgres: postgres.image }),
        ingress: parseIngress(r, cluster),
        backup: parseBackup(stack, cluster, r, readSecret),
    });
}

/**
 * The DigitalOcean API token, as a secret, from the same two places the provider reads. The program needs it
 * too, to build a kubeconfig that does not expire (components/doks-cluster.ts). `neededBy` names what needs it
 * in the error.
 */
export function digitalOceanToken(neededBy = "clusterMode digitalocean"): pulumi.Output<string> {
    const fromConfig = new pulumi.Config("digitalocean").getSecret("token");
    if (fromConfig !== undefined) {
        return fromConfig;
    }
    const fromEnv = process.env.DIGITALOCEAN_TOKEN || process.env.DIGITALOCEAN_ACCESS_TOKEN;
    if (!fromEnv) {
        throw new ConfigError(
            "digitalocean:token",
            undefined,
            `${neededBy} needs a DigitalOcean API token: pulumi config set --secret digitalocean:token <token>, or DIGITALOCEAN_TOKEN in the environment`,
        );
    }
    return pulumi.secret(fromEnv);
}

/**
 * Fails unless the DigitalOcean provider has Spaces credentials, from the same two places it reads them: a Spaces
 * bucket is managed through the S3 API with a Spaces key, which the API token does not replace. Without them the
 * update would fail at the bucket, after other resources had changed. `neededBy` names what needs them.
 */
export function requireSpacesCredentials(neededBy = "backupMode spaces"): void {
    const config = new pulumi.Config("digitalocean");
    const missing = [
        { name: "spacesAccessId", env: "SPACES_ACCESS_KEY_ID" },
        { name: "spacesSecretKey", env: "SPACES_SECRET_ACCESS_KEY" },
    ].find((c) => config.getSecret(c.name) === undefined && !process.env[c.env]);
    if (missing !== undefined) {
        throw new ConfigError(
            `digitalocean:${missing.name}`,
            undefined,
            `${neededBy} creates a Spaces bucket, which needs Spaces credentials for the DigitalOcean provider: pulumi config set digitalocean:spacesAccessId <key> and pulumi config set --secret digitalocean:spacesSecretKey <secret>, or SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY in the environment (a Spaces key with full access, made once in the control panel)`,
        );
    }
}

/** Reads this stack's configuration once. Throws `ConfigError` before any resource is registered. */
export function loadConfig(): AppConfig {
    const config = new pulumi.Config(PROJECT);
    return parseConfig(
        pulumi.getStack(),
        (key) => config.get(key),
        (key) => config.getSecret(key),
    );
}
