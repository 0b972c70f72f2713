import * as assert from "node:assert";
import { CERT_MANAGER_CHART, dnsRecordFor, TRAEFIK_CHART } from "../components/ingress";
import { ConfigError } from "../components/validate";
import { evaluate, type ProgramResource, unwrap } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

describe("ApiIngress component (dev stack)", () => {
    let resources: ProgramResource[];
    let exports: Record<string, any>;
    before(async () => {
        ({ resources, exports } = await evaluate("dev"));
    });

    it("installs Traefik from its pinned Helm chart", () => {
        const release = one(resources, T.release, "ingress-traefik");
        assert.strictEqual(release.inputs.chart, "traefik");
        assert.strictEqual(release.inputs.version, TRAEFIK_CHART.version);
        assert.deepStrictEqual(release.inputs.repositoryOpts, { repo: "https://traefik.github.io/charts" });
        assert.strictEqual(release.inputs.namespace, "traefik");
        assert.strictEqual(release.inputs.values.ingressClass.name, "traefik");
        assert.strictEqual(release.inputs.values.providers.kubernetesIngress.publishedService.enabled, true);
        assert.strictEqual(release.inputs.values.service.type, "LoadBalancer");
    });

    it("routes drexii.me to the API Service", () => {
        const ingress = one(resources, T.ingress, "stateful-flask");
        assert.strictEqual(ingress.inputs.metadata.namespace, "stateful-namespace");
        assert.strictEqual(ingress.inputs.spec.ingressClassName, "traefik");
        assert.deepStrictEqual(ingress.inputs.spec.rules, [
            {
                host: "drexii.me",
                http: {
                    paths: [
                        {
                            path: "/",
                            pathType: "Prefix",
                            backend: { service: { name: "stateful-flask", port: { number: 80 } } },
                        },
                    ],
                },
            },
        ]);
        assert.strictEqual(ingress.inputs.spec.tls, undefined);
        assert.ok(ingress.dependencies.includes(one(resources, T.release, "ingress-traefik").urn));
    });

    it("exports the load balancer address and the API URL", async () => {
        assert.strictEqual((await unwrap(exports.ingressAddress)).value, "203.0.113.10");
        assert.strictEqual((await unwrap(exports.apiUrl)).value, "http://drexii.me");
    });

    it("serves plain HTTP without a redirect while TLS is off", () => {
        assert.strictEqual(one(resources, T.release, "ingress-traefik").inputs.values.ports, undefined);
    });

    it("redirects plain HTTP to HTTPS (permanent, Traefik's web entrypoint) when TLS is on", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:tlsEnabled": "true",
            "stateful-flask:tlsEmail": "ops@drexii.me",
        });
        const values = one(run.resources, T.release, "ingress-traefik").inputs.values;
        assert.deepStrictEqual(values.ports, {
            web: { http: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true } } } },
        });
        // The rest of the chart's values are unchanged by it.
        assert.strictEqual(values.ingressClass.name, "traefik");
        assert.strictEqual(values.service.type, "LoadBalancer");
    });

    it("warns that an existing controller redirects only if it does so itself", async () => {
        const warnings: string[] = [];
        const warn = console.warn;
        console.warn = (...args: unknown[]) => {
            warnings.push(args.join(" "));
        };
        try {
            await evaluate("dev", {
                "stateful-flask:tlsEnabled": "true",
                "stateful-flask:tlsEmail": "ops@drexii.me",
                "stateful-flask:ingressController": "existing",
            });
            await evaluate("dev", { "stateful-flask:ingressController": "existing" });
        } finally {
            console.warn = warn;
        }
        assert.deepStrictEqual(
            warnings.filter((w) => w.includes("tlsEnabled")),
            [
                "warning: [runtime] tlsEnabled with ingressController existing: http://drexii.me is redirected to HTTPS only if that controller does it " +
                    "(ingress-nginx does for an Ingress with TLS; Traefik needs its web entrypoint's redirection, docs/decisions.md)",
            ],
        );
    });

    it("adds cert-manager, a Let's Encrypt ClusterIssuer and a TLS section when TLS is on", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:tlsEnabled": "true",
            "stateful-flask:tlsEmail": "ops@drexii.me",
        });
        const cm = one(run.resources, T.release, "ingress-cert-manager");
        assert.strictEqual(cm.inputs.version, CERT_MANAGER_CHART.version);
        const issuer = one(run.resources, "kubernetes:cert-manager.io/v1:ClusterIssuer");
        assert.strictEqual(issuer.inputs.spec.acme.email, "ops@drexii.me");
        assert.ok(issuer.dependencies.includes(cm.urn));
        const ingress = one(run.resources, T.ingress);
        assert.deepStrictEqual(ingress.inputs.spec.tls, [{ hosts: ["drexii.me"], secretName: "stateful-flask-tls" }]);
        assert.strictEqual(ingress.inputs.metadata.annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert.strictEqual((await unwrap(run.exports.apiUrl)).value, "https://drexii.me");
    });

    it("creates the DigitalOcean domain and an A record at the load balancer when asked", async () => {
        const run = await evaluate("dev", { "stateful-flask:manageDns": "true" });
        const domain = one(run.resources, "digitalocean:index/domain:Domain");
        assert.strictEqual(domain.inputs.name, "drexii.me");
        const record = one(run.resources, "digitalocean:index/dnsRecord:DnsRecord");
        assert.strictEqual(record.inputs.type, "A");
        assert.strictEqual(record.inputs.name, "@");
        assert.strictEqual(record.inputs.value, "203.0.113.10");
    });

    it("uses a controller that already exists without installing one", async () => {
        const run = await evaluate("dev", {
            "stateful-flask:ingressController": "existing",
            "stateful-flask:ingressClassName": "nginx",
        });
        assert.deepStrictEqual(all(run.resources, T.release), []);
        assert.strictEqual(one(run.resources, T.ingress).inputs.spec.ingressClassName, "nginx");
    });

    it("creates no Ingress with controller none (local stack)", async () => {
        const run = await evaluate("local");
        assert.deepStrictEqual(all(run.resources, T.ingress), []);
        assert.deepStrictEqual(all(run.resources, T.release), []);
        assert.match(
            (await unwrap(run.exports.apiUrl)).value as string,
            /^kubectl -n stateful-namespace port-forward svc\/stateful-flask 8080:80/,
        );
    });

    it("splits hosts into zone and record", () => {
        assert.deepStrictEqual(dnsRecordFor("drexii.me"), { zone: "drexii.me", record: "@" });
        assert.deepStrictEqual(dnsRecordFor("api.drexii.me"), { zone: "drexii.me", record: "api" });
        assert.deepStrictEqual(dnsRecordFor("a.b.example.co.uk", "example.co.uk"), {
            zone: "example.co.uk",
            record: "a.b",
        });
        assert.throws(
            () => dnsRecordFor("drexii.me", "example.com"),
            (e: unknown) =>
                e instanceof ConfigError &&
                e.message ===
                    'dnsZone: "example.com" is not valid; expected a zone that contains ingressHost (drexii.me)',
        );
    });
});
