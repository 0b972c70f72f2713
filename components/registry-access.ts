import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./validate";

/** The host of DigitalOcean Container Registry (DOCR). */
export const DOCR_HOST = "registry.digitalocean.com";

// DigitalOcean's rule for registry names: lower-case letters, digits and '-', at most 63 characters.
const DOCR_REGISTRY_NAME = /^[a-z0-9-]{1,63}$/;

/**
 * The DOCR registry an image is pulled from: `drexii` for `registry.digitalocean.com/drexii/stateful-flask:v1.0.0`,
 * undefined for an image on any other registry (docker.io, ghcr.io, a local name). An image on DOCR's host whose
 * path is not `<registry>/<repository>` can never be pulled, so it is a `ConfigError` under `key`.
 */
export function docrRegistryName(image: string, key = "image"): string | undefined {
    const slash = image.indexOf("/");
    if (slash < 0 || image.slice(0, slash).toLowerCase() !== DOCR_HOST) {
        return undefined;
    }
    const segments = image
        .slice(slash + 1)
        .split("@")[0]
        .split("/");
    if (segments.length < 2 || !DOCR_REGISTRY_NAME.test(segments[0])) {
        throw new ConfigError(
            key,
            image,
            `an image on ${DOCR_HOST} is ${DOCR_HOST}/<registry>/<repository>:<tag>, the registry name of lower-case letters, digits and '-'`,
        );
    }
    return segments[0];
}

/** Arguments of {@link DocrPullSecret}. */
export interface DocrPullSecretArgs {
    /** The namespace of the Secret; pass the Namespace resource's `metadata.name` so the Secret waits for it. */
    readonly namespace: pulumi.Input<string>;
    /** The DOCR registry, e.g. from {@link docrRegistryName}. */
    readonly registryName: string;
    /** Labels of the Secret. @default none */
    readonly labels?: Record<string, string>;
}

/**
 * Read-only pull access to one DigitalOcean Container Registry for the pods of one namespace: DOCR Docker
 * credentials, made through the DigitalOcean provider (so a DigitalOcean API token is needed), stored in a
 * `kubernetes.io/dockerconfigjson` Secret. Pods name {@link secretName} in `imagePullSecrets`.
 */
export class DocrPullSecret extends pulumi.ComponentResource {
    public readonly credentials: digitalocean.ContainerRegistryDockerCredentials;
    public readonly secret: k8s.core.v1.Secret;
    /** The Secret's name, for `imagePullSecrets`. */
    public readonly secretName: string;

    constructor(name: string, args: DocrPullSecretArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:infra:DocrPullSecret", name, {}, opts);

        if (!DOCR_REGISTRY_NAME.test(args.registryName)) {
            throw new ConfigError(
                "registryName",
                args.registryName,
                "expected a DOCR registry name: lower-case letters, digits and '-', at most 63 characters",
            );
        }
        // Not `registry-<name>`: that is the Secret DOKS's own registry integration copies into namespaces, and two
        // owners of one object would overwrite each other.
        this.secretName = `docr-${args.registryName}`;

        // No expirySeconds: DigitalOcean's default (about 50 years) is used. Credentials that expire would stop
        // pulls (a rescheduled pod, a replaced node) long after the last `pulumi up`; rotation is a `--replace`.
        this.credentials = new digitalocean.ContainerRegistryDockerCredentials(
            `${name}-credentials`,
            {
                registryName: args.registryName,
                write: false,
            },
            { parent: this },
        );

        this.secret = new k8s.core.v1.Secret(
            name,
            {
                metadata: { name: this.secretName, namespace: args.namespace, labels: args.labels },
                type: "kubernetes.io/dockerconfigjson",
                stringData: { ".dockerconfigjson": pulumi.secret(this.credentials.dockerCredentials) },
            },
            { parent: this },
        );

        this.registerOutputs({ secretName: this.secretName });
    }
}
