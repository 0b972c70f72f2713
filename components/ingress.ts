import * as digitalocean from "@pulumi/digitalocean";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, validateEmail, validateHost, validateName, validateOneOf } from "./validate";

/** Traefik's Helm chart, pinned (maintained; see README "Why Traefik"). */
export const TRAEFIK_CHART = { chart: "traefik", version: "41.5.0", repo: "https://traefik.github.io/charts" } as const;
/** cert-manager's Helm chart, pinned. */
export const CERT_MANAGER_CHART = {
    chart: "cert-manager",
    version: "v1.20.2",
    repo: "https://charts.jetstack.io",
} as const;

/** The Traefik chart's redirection of its `web` entrypoint (port 80) to `websecure` (443), used when TLS is on. */
export const HTTPS_REDIRECT = { to: "websecure", scheme: "https", permanent: true } as const;

/** `traefik`: installed here from its Helm chart; `existing`: a controller already in the cluster. */
export const INGRESS_CONTROLLERS = ["traefik", "existing"] as const;
export type IngressControllerKind = (typeof INGRESS_CONTROLLERS)[number];

/** The defaults of {@link ApiIngressArgs}; config.ts applies the same ones to unset stack keys. */
export const INGRESS_DEFAULTS = {
    controller: "traefik" as IngressControllerKind,
    className: "traefik",
    tls: false,
    manageDns: false,
} as const;

/** A DNS record managed here points at the load balancer of the controller this program installs, so it needs that one. */
export function validateDnsController(manageDns: boolean, controller: string): void {
    if (manageDns && controller !== "traefik") {
        throw new ConfigError(
            "manageDns",
            true,
            "the A record points at the load balancer of the ingress controller this program installs; set ingressController traefik",
        );
    }
}

/** Arguments of {@link ApiIngress}. */
export interface ApiIngressArgs {
    /** Public host name, e.g. `drexii.me`. */
    readonly host: string;
    /** Namespace of the backend Service (the Ingress is created there). */
    readonly namespace: string;
    /** Backend Service name and port. */
    readonly serviceName: string;
    readonly servicePort: number;
    /** `traefik` installs Traefik from its Helm chart; `existing` uses a controller already in the cluster. @default "traefik" */
    readonly controller?: IngressControllerKind;
    /** IngressClass to use (and, for `traefik`, to create). @default "traefik" */
    readonly className?: string;
    /**
     * Serve HTTPS with a Let's Encrypt certificate issued by cert-manager (installed here); with `traefik`, plain HTTP
     * then redirects to HTTPS. @default false
     */
    readonly tls?: boolean;
    /** ACME account e-mail; required when `tls` is on. */
    readonly tlsEmail?: string;
    /** Create the DigitalOcean domain and an A record for `host` pointing at the load balancer. @default false */
    readonly manageDns?: boolean;
    /** The DNS zone the record goes in. @default the last two labels of `host` */
    readonly dnsZone?: string;
    /** Replicas of the Traefik controller. @default 2 */
    readonly controllerReplicas?: number;
}

/** Splits a host into the DigitalOcean domain and the record name in it (`@` for the apex). */
export function dnsRecordFor(host: string, zone?: string): { zone: string; record: string } {
    const labels = host.split(".");
    const domain = zone ?? labels.slice(-2).join(".");
    if (host !== domain && !host.endsWith(`.${domain}`)) {
        throw new ConfigError("dnsZone", domain, `expected a zone that contains ingressHost (${host})`);
    }
    return { zone: domain, record: host === domain ? "@" : host.slice(0, -(domain.length + 1)) };
}

/**
 * Routes the API's host to its Service: an ingress controller (Traefik from its Helm chart, or one that is
 * already installed), an Ingress, and optionally cert-manager TLS and a DigitalOcean DNS record.
 */
export class ApiIngress extends pulumi.ComponentResource {
    public readonly controllerRelease?: k8s.helm.v3.Release;
    public readonly certManagerRelease?: k8s.helm.v3.Release;
    public readonly clusterIssuer?: k8s.apiextensions.CustomResource;
    public readonly ingress: k8s.networking.v1.Ingress;
    public readonly dnsRecord?: digitalocean.DnsRecord;
    /** The load balancer's IP address or host name, once the controller has published it. */
    public readonly address: pulumi.Output<string>;
    /** The API's public URL. */
    public readonly url: string;

    constructor(name: string, args: ApiIngressArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:network:ApiIngress", name, {}, opts);

        const host = validateHost("ingressHost", args.host);
        const controller = validateOneOf(
            "ingressController",
            args.controller ?? INGRESS_DEFAULTS.controller,
            INGRESS_CONTROLLERS,
        );
        const className = validateName("ingressClassName", args.className ?? INGRESS_DEFAULTS.className);
        const tls = args.tls ?? INGRESS_DEFAULTS.tls;
        const email = tls ? validateEmail("tlsEmail", args.tlsEmail) : undefined;
        const manageDns = args.manageDns ?? INGRESS_DEFAULTS.manageDns;
        validateDnsController(manageDns, controller);
        const dns = manageDns ? dnsRecordFor(host, args.dnsZone) : undefined;
        this.url = `${tls ? "https" : "http"}://${host}`;

        const dependsOn: pulumi.Resource[] = [];
        if (tls && controller === "existing") {
            // Redirecting is the controller's setting, which this program does not own.
            pulumi.log.warn(
                `tlsEnabled with ingressController existing: http://${host} is redirected to HTTPS only if that controller does it ` +
                    "(ingress-nginx does for an Ingress with TLS; Traefik needs its web entrypoint's redirection, docs/decisions.md)",
                this,
            );
        }
        if (controller === "traefik") {
            const controllerNs = new k8s.core.v1.Namespace(
                `${name}-traefik-namespace`,
                {
                    metadata: { name: "traefik" },
                },
                { parent: this },
            );
            this.controllerRelease = new k8s.helm.v3.Release(
                `${name}-traefik`,
                {
                    name: "traefik",
                    namespace: controllerNs.metadata.name,
                    chart: TRAEFIK_CHART.chart,
                    version: TRAEFIK_CHART.version,
                    repositoryOpts: { repo: TRAEFIK_CHART.repo },
                    atomic: true,
                    values: {
                        deployment: { replicas: args.controllerReplicas ?? 2 },
                        podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
                        ingressClass: { enabled: true, isDefaultClass: false, name: className },
                        // Publish the load balancer address on Ingress status, so the Ingress (and this stack's
                        // outputs) carry it.
                        providers: {
                            kubernetesIngress: { publishedService: { enabled: true } },
                            kubernetesCRD: { enabled: false },
                        },
                        service: {
                            type: "LoadBalancer",
                            annotations: { "service.beta.kubernetes.io/do-loadbalancer-name": `${name}-traefik` },
                        },
                        resources: {
                            requests: { cpu: "100m", memory: "128Mi" },
                            limits: { cpu: "500m", memory: "256Mi" },
                        },
                        // With TLS, plain HTTP only redirects, permanently, to HTTPS. The ACME HTTP-01 challenge still works through
                        // it: Let's Encrypt and cert-manager's self check follow the redirect without verifying the
                        // certificate (docs/decisions.md).
                        ...(tls ? { ports: { web: { http: { redirections: { entryPoint: HTTPS_REDIRECT } } } } } : {}),
                    },
                },
                { parent: this },
            );
            dependsOn.push(this.controllerRelease);
        }

        const annotations: Record<string, string> = {};
        if (tls) {
            const certManagerNs = new k8s.core.v1.Namespace(
                `${name}-cert-manager-namespace`,
                {
                    metadata: { name: "cert-manager" },
                },
                { parent: this },
            );
            this.certManagerRelease = new k8s.helm.v3.Release(
                `${name}-cert-manager`,
                {
                    name: "cert-manager",
                    namespace: certManagerNs.metadata.name,
                    chart: CERT_MANAGER_CHART.chart,
                    version: CERT_MANAGER_CHART.version,
                    repositoryOpts: { repo: CERT_MANAGER_CHART.repo },
                    atomic: true,
                    values: { crds: { enabled: true, keep: true } },
                },
                { parent: this },
            );
            this.clusterIssuer = new k8s.apiextensions.CustomResource(
                `${name}-letsencrypt`,
                {
                    apiVersion: "cert-manager.io/v1",
                    kind: "ClusterIssuer",
                    metadata: { name: "letsencrypt" },
                    spec: {
                        acme: {
                            server: "https://acme-v02.api.letsencrypt.org/directory",
                            email,
                            privateKeySecretRef: { name: "letsencrypt-account-key" },
                            solvers: [{ http01: { ingress: { ingressClassName: className } } }],
                        },
                    },
                },
                { parent: this, dependsOn: [this.certManagerRelease] },
            );
            annotations["cert-manager.io/cluster-issuer"] = "letsencrypt";
            dependsOn.push(this.clusterIssuer);
        }

        this.ingress = new k8s.networking.v1.Ingress(
            `${name}-ingress`,
            {
                metadata: { name: args.serviceName, namespace: args.namespace, annotations },
                spec: {
                    ingressClassName: className,
                    rules: [
                        {
                            host,
                            http: {
                                paths: [
                                    {
                                        path: "/",
                                        pathType: "Prefix",
                                        backend: {
                                            service: { name: args.serviceName, port: { number: args.servicePort } },
                                        },
                                    },
                                ],
                            },
                        },
                    ],
                    ...(tls ? { tls: [{ hosts: [host], secretName: `${args.serviceName}-tls` }] } : {}),
                },
            },
            { parent: this, dependsOn },
        );

        this.address = this.ingress.status.apply((status) => {
            const lb = status?.loadBalancer?.ingress?.[0];
            return lb?.ip ?? lb?.hostname ?? "";
        });

        if (dns) {
            const domain = new digitalocean.Domain(`${name}-domain`, { name: dns.zone }, { parent: this });
            this.dnsRecord = new digitalocean.DnsRecord(
                `${name}-a-record`,
                {
                    domain: domain.id,
                    type: "A",
                    name: dns.record,
                    value: this.address,
                    ttl: 300,
                },
                { parent: this },
            );
        }

        this.registerOutputs({ address: this.address, url: this.url });
    }
}
