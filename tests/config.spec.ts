import * as assert from "node:assert";
import { parseConfig } from "../config";
import { memberSpread } from "../config/postgres";
import {
    ConfigError,
    quantityToBytes,
    REPLICA_LIMITS,
    validateHost,
    validatePinnedImage,
    validateStorageSize,
} from "../components/validate";
import { stackConfig } from "./helpers/program";

/** A reader over a plain map, keys without the project prefix. */
function reader(values: Record<string, string>) {
    return (key: string) => values[key];
}

const minimal = { apiImage: "registry.example.com/team/stateful-flask:v1.0.0", ingressHost: "drexii.me" };

function expectError(values: Record<string, string>, message: string): void {
    assert.throws(
        () => parseConfig("test", reader({ ...minimal, ...values })),
        (err: unknown) => err instanceof ConfigError && err.message === message,
    );
}

describe("config", () => {
    it("applies the documented defaults", () => {
        const c = parseConfig("test", reader(minimal));
        assert.strictEqual(c.cluster.mode, "digitalocean");
        assert.ok(c.cluster.mode === "digitalocean");
        assert.strictEqual(c.cluster.region, "fra1");
        assert.strictEqual(c.cluster.kubernetesVersionPrefix, "1.35.");
        assert.strictEqual(c.cluster.nodeCount, 3);
        assert.strictEqual(c.cluster.clusterSubnet, "10.244.0.0/16");
        assert.strictEqual(c.postgres.namespace, "postgres");
        assert.strictEqual(c.postgres.replicas, 1);
        assert.strictEqual(c.postgres.storageSize, "5Gi");
        assert.strictEqual(c.postgres.storageClass, "do-block-storage");
        assert.strictEqual(c.postgres.database, "stateful-flask-db");
        assert.strictEqual(c.postgres.user, "stateful-flask-user");
        assert.strictEqual(c.postgres.replicationCidr, "10.244.0.0/16");
        assert.strictEqual(c.api.namespace, "stateful-namespace");
        assert.strictEqual(c.api.replicas, 1);
        assert.strictEqual(c.api.port, 5000);
        assert.strictEqual(c.ingress.controller, "traefik");
        assert.strictEqual(c.ingress.host, "drexii.me");
        assert.strictEqual(c.ingress.tls, false);
        assert.strictEqual(c.protectData, true);
        assert.strictEqual(c.partOf, "stateful-flask");
    });

    it("backs up to a new Spaces bucket by default in digitalocean mode, and not at all in existing mode", () => {
        assert.deepStrictEqual(parseConfig("test", reader(minimal)).backup, {
            mode: "spaces",
            bucket: "stateful-flask-test-pgbackrest",
            region: "fra1",
            endpoint: "fra1.digitaloceanspaces.com",
            path: "/stateful-flask/test",
            schedule: "0 3 * * *",
            retentionFull: 7,
            retentionDays: 7,
            archiveTimeout: 60,
            cipherPassphrase: undefined,
            uriStyle: "host",
        });
        assert.deepStrictEqual(parseConfig("test", reader({ ...minimal, clusterMode: "existing" })).backup, {
            mode: "off",
        });
    });

    it("is frozen", () => {
        const c = parseConfig("test", reader(minimal));
        assert.ok(Object.isFrozen(c) && Object.isFrozen(c.postgres) && Object.isFrozen(c.cluster));
    });

    it("reads both committed stack files without error", () => {
        for (const stack of ["dev", "local"] as const) {
            const values = Object.fromEntries(
                Object.entries(stackConfig(stack)).map(([k, v]) => [k.replace(/^stateful-flask:/, ""), v]),
            );
            const c = parseConfig(stack, reader(values));
            assert.strictEqual(c.cluster.mode, stack === "dev" ? "digitalocean" : "existing");
        }
    });

    it("keeps replicas 0 as 0 and rejects it (no `|| 1` coercion)", () => {
        expectError({ apiReplicas: "0" }, "apiReplicas: 0 is not valid; expected an integer from 1 to 9");
        expectError({ postgresReplicas: "0" }, "postgresReplicas: 0 is not valid; expected an integer from 1 to 9");
    });

    it("rejects replicas that are not integers", () => {
        expectError({ apiReplicas: "1.5" }, 'apiReplicas: "1.5" is not valid; expected an integer from 1 to 9');
        expectError(
            { postgresReplicas: "three" },
            'postgresReplicas: "three" is not valid; expected an integer from 1 to 9',
        );
        expectError({ apiReplicas: "-2" }, "apiReplicas: -2 is not valid; expected an integer from 1 to 9");
        expectError({ apiReplicas: "1e1" }, 'apiReplicas: "1e1" is not valid; expected an integer from 1 to 9');
    });

    it("accepts the same replica range for the API as for the database, which the policy pack requires equal", () => {
        assert.deepStrictEqual(REPLICA_LIMITS, { min: 1, max: 9 });
        const c = parseConfig("test", reader({ ...minimal, apiReplicas: "9", postgresReplicas: "9" }));
        assert.deepStrictEqual([c.api.replicas, c.postgres.replicas], [9, 9]);
        expectError({ apiReplicas: "10" }, "apiReplicas: 10 is not valid; expected an integer from 1 to 9");
        expectError({ postgresReplicas: "10" }, "postgresReplicas: 10 is not valid; expected an integer from 1 to 9");
    });

    it("takes an unprivileged apiPort, which the API image binds to (PORT)", () => {
        assert.strictEqual(parseConfig("test", reader({ ...minimal, apiPort: "8080" })).api.port, 8080);
        const allowed =
            "expected an integer from 1024 to 65535: the API runs as a non-root user without capabilities, which cannot bind a port below 1024";
        expectError({ apiPort: "80" }, `apiPort: 80 is not valid; ${allowed}`);
        expectError({ apiPort: "65536" }, `apiPort: 65536 is not valid; ${allowed}`);
        expectError({ apiPort: "http" }, `apiPort: "http" is not valid; ${allowed}`);
    });

    it("refuses the retired apiHealthPath: the image serves its health check at /healthz only", () => {
        expectError(
            { apiHealthPath: "/health" },
            'apiHealthPath: "/health" is not valid; this key is retired: the API image serves its health check at /healthz only, and the probes use it. Remove it (pulumi config rm apiHealthPath)',
        );
        expectError(
            { apiHealthPath: "/healthz" },
            'apiHealthPath: "/healthz" is not valid; this key is retired: the API image serves its health check at /healthz only, and the probes use it. Remove it (pulumi config rm apiHealthPath)',
        );
    });

    it("refuses the retired postgresPrimaryOrdinal: Patroni elects the leader", () => {
        expectError(
            { postgresReplicas: "3", postgresPrimaryOrdinal: "1" },
            'postgresPrimaryOrdinal: "1" is not valid; this key is retired: Patroni elects the leader and fails over by itself. Remove it (pulumi config rm postgresPrimaryOrdinal); to move the leader, see docs/failover.md (switchover)',
        );
    });

    it("defaults to synchronous replication, and accepts off and strict (with replicas)", () => {
        assert.strictEqual(parseConfig("t", reader(minimal)).postgres.synchronousMode, "on");
        assert.strictEqual(
            parseConfig("t", reader({ ...minimal, postgresSynchronousMode: "off" })).postgres.synchronousMode,
            "off",
        );
        assert.strictEqual(
            parseConfig(
                "t",
                reader({ ...minimal, postgresReplicas: "2", apiReplicas: "2", postgresSynchronousMode: "strict" }),
            ).postgres.synchronousMode,
            "strict",
        );
        expectError(
            { postgresSynchronousMode: "yes" },
            'postgresSynchronousMode: "yes" is not valid; expected one of on, off, strict',
        );
    });

    it("refuses strict synchronous replication with one member: every write would hang", () => {
        expectError(
            { postgresSynchronousMode: "strict" },
            'postgresSynchronousMode: "strict" is not valid; strict needs postgresReplicas of at least 2 (it is 1): a lone member could never confirm a commit, so every write would hang',
        );
    });

    it("defaults to the project's Patroni image and refuses the official postgres image, which has no Patroni", () => {
        assert.strictEqual(
            parseConfig("t", reader(minimal)).postgres.image,
            "registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1",
        );
        for (const image of ["postgres:15.20-bookworm", "docker.io/library/postgres:15", "library/postgres:15.20"]) {
            expectError(
                { postgresImage: image },
                `postgresImage: ${JSON.stringify(image)} is not valid; expected the project's Postgres image with Patroni (images/postgres, e.g. registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1); the official postgres image has no Patroni`,
            );
        }
    });

    it("rejects an unknown region, naming the allowed ones", () => {
        assert.throws(
            () => parseConfig("test", reader({ ...minimal, region: "mars1" })),
            (err: unknown) =>
                err instanceof ConfigError &&
                /^region: "mars1" is not valid; expected one of .*fra1.*nyc3/.test(err.message),
        );
    });

    it("rejects an unknown cluster mode", () => {
        expectError({ clusterMode: "eks" }, 'clusterMode: "eks" is not valid; expected one of digitalocean, existing');
    });

    it("rejects a malformed host", () => {
        for (const host of [
            "https://drexii.me",
            "drexii",
            "Drexii.me",
            "drexii.me/tasks",
            "drexii.me:80",
            "10.0.0.1",
        ]) {
            assert.throws(
                () => parseConfig("test", reader({ ...minimal, ingressHost: host })),
                (err: unknown) =>
                    err instanceof ConfigError &&
                    err.message.startsWith(
                        `ingressHost: ${JSON.stringify(host)} is not valid; expected a lower-case DNS name`,
                    ),
            );
        }
    });

    it("requires a host unless there is no ingress", () => {
        assert.throws(
            () => parseConfig("test", reader({ apiImage: minimal.apiImage })),
            (err: unknown) =>
                err instanceof ConfigError &&
                err.message.startsWith("ingressHost: undefined is not valid; this key is required"),
        );
        const c = parseConfig("test", reader({ apiImage: minimal.apiImage, ingressController: "none" }));
        assert.strictEqual(c.ingress.controller, "none");
    });

    it("rejects a storage size that is not a Kubernetes quantity, or below 1Gi", () => {
        expectError(
            { postgresStorageSize: "5GB" },
            'postgresStorageSize: "5GB" is not valid; expected a Kubernetes quantity such as 5Gi, 512Mi or 1Ti',
        );
        expectError(
            { postgresStorageSize: "five" },
            'postgresStorageSize: "five" is not valid; expected a Kubernetes quantity such as 5Gi, 512Mi or 1Ti',
        );
        expectError(
            { postgresStorageSize: "512Mi" },
            'postgresStorageSize: "512Mi" is not valid; expected at least 1Gi',
        );
    });

    it("rejects an image without a tag or with :latest, and a missing image", () => {
        const msg = (v: string) =>
            `apiImage: ${JSON.stringify(v)} is not valid; expected an image pinned to a release, such as registry.example.com/team/app:v1.2.3 or app@sha256:<digest> (untagged and :latest are refused)`;
        expectError({ apiImage: "drexii/stateful-flask" }, msg("drexii/stateful-flask"));
        expectError({ apiImage: "drexii/stateful-flask:latest" }, msg("drexii/stateful-flask:latest"));
        expectError({ apiImage: "localhost:5000/stateful-flask" }, msg("localhost:5000/stateful-flask"));
        expectError(
            { postgresImage: "postgres" },
            'postgresImage: "postgres" is not valid; expected an image pinned to a release, such as registry.example.com/team/app:v1.2.3 or app@sha256:<digest> (untagged and :latest are refused)',
        );
        assert.throws(
            () => parseConfig("test", reader({ ingressHost: "drexii.me" })),
            (err: unknown) =>
                err instanceof ConfigError &&
                err.message.startsWith("apiImage: undefined is not valid; this key is required"),
        );
    });

    it("rejects booleans that are not true or false", () => {
        expectError({ protectData: "yes" }, 'protectData: "yes" is not valid; expected true or false');
    });

    it("rejects TLS without an e-mail, and DNS without a DigitalOcean cluster", () => {
        assert.throws(
            () => parseConfig("test", reader({ ...minimal, tlsEnabled: "true" })),
            (err: unknown) =>
                err instanceof ConfigError &&
                err.message.startsWith("tlsEmail: undefined is not valid; this key is required"),
        );
        expectError(
            { clusterMode: "existing", manageDns: "true" },
            "manageDns: true is not valid; a DigitalOcean DNS record needs clusterMode digitalocean; set manageDns false",
        );
    });

    it("rejects autoscaling bounds that are upside down", () => {
        expectError(
            { autoScale: "true", minNodes: "4", maxNodes: "2" },
            "maxNodes: 2 is not valid; expected at least minNodes (4)",
        );
    });

    it("reads controlPlaneAllowedAddresses as a list, empty by default", () => {
        const byDefault = parseConfig("test", reader(minimal)).cluster;
        assert.ok(byDefault.mode === "digitalocean");
        assert.deepStrictEqual(byDefault.controlPlaneAllowedAddresses, []);
        const c = parseConfig(
            "test",
            reader({ ...minimal, controlPlaneAllowedAddresses: " 203.0.113.7 ,198.51.100.0/24,192.0.2.0/32" }),
        ).cluster;
        assert.ok(c.mode === "digitalocean");
        assert.deepStrictEqual(c.controlPlaneAllowedAddresses, ["203.0.113.7", "198.51.100.0/24", "192.0.2.0/32"]);
    });

    it("rejects a controlPlaneAllowedAddresses entry that is not an IPv4 address or CIDR block, naming the entry", () => {
        const allowed = "expected an IPv4 address or CIDR block such as 203.0.113.7 or 198.51.100.0/24";
        expectError(
            { controlPlaneAllowedAddresses: "203.0.113.7,198.51.100.0/33" },
            `controlPlaneAllowedAddresses: "198.51.100.0/33" is not valid; ${allowed}`,
        );
        expectError(
            { controlPlaneAllowedAddresses: "203.0.113.256" },
            `controlPlaneAllowedAddresses: "203.0.113.256" is not valid; ${allowed}`,
        );
        expectError(
            { controlPlaneAllowedAddresses: "203.0.113.07" },
            `controlPlaneAllowedAddresses: "203.0.113.07" is not valid; ${allowed}`,
        );
        expectError(
            { controlPlaneAllowedAddresses: "2001:db8::/32" },
            `controlPlaneAllowedAddresses: "2001:db8::/32" is not valid; ${allowed}`,
        );
        expectError(
            { controlPlaneAllowedAddresses: "203.0.113.7 198.51.100.1" },
            `controlPlaneAllowedAddresses: "203.0.113.7 198.51.100.1" is not valid; ${allowed}`,
        );
    });

    it("rejects an empty entry in controlPlaneAllowedAddresses", () => {
        expectError(
            { controlPlaneAllowedAddresses: "203.0.113.7,,198.51.100.0/24" },
            'controlPlaneAllowedAddresses: "203.0.113.7,,198.51.100.0/24" is not valid; expected IPv4 addresses or CIDR blocks separated by single commas, such as 203.0.113.7,198.51.100.0/24 (found an empty entry)',
        );
    });

    it("rejects controlPlaneAllowedAddresses in existing mode, where this program does not own the cluster", () => {
        expectError(
            { clusterMode: "existing", controlPlaneAllowedAddresses: "203.0.113.7" },
            'controlPlaneAllowedAddresses: "203.0.113.7" is not valid; the control-plane firewall is a setting of the DOKS cluster this program creates (clusterMode digitalocean); restrict an existing cluster\'s API where that cluster is managed, and unset this key',
        );
    });

    it("gives DOCR pull access per image by registry host, by default only in digitalocean mode", () => {
        const docr = (registry: string, repo: string) => `registry.digitalocean.com/${registry}/${repo}`;
        const both = {
            apiImage: docr("drexii", "stateful-flask:v1.0.0"),
            postgresImage: docr("db-team", "stateful-flask-postgres:15.20-1"),
        };
        assert.deepStrictEqual(parseConfig("test", reader({ ...minimal, ...both })).registryAccess, {
            api: "drexii",
            postgres: "db-team",
        });
        assert.deepStrictEqual(
            parseConfig("test", reader({ ...minimal, postgresImage: "ghcr.io/drexii/stateful-flask-postgres:15.20-1" }))
                .registryAccess,
            { api: undefined, postgres: undefined },
        );
        assert.deepStrictEqual(
            parseConfig("test", reader({ ...minimal, ...both, docrPullAccess: "false" })).registryAccess,
            {},
        );
        assert.deepStrictEqual(
            parseConfig("test", reader({ ...minimal, ...both, clusterMode: "existing" })).registryAccess,
            {},
        );
        assert.deepStrictEqual(
            parseConfig("test", reader({ ...minimal, ...both, clusterMode: "existing", docrPullAccess: "true" }))
                .registryAccess,
            { api: "drexii", postgres: "db-team" },
        );
    });

    it("rejects an image on registry.digitalocean.com that names no registry, whether pull access is on or not", () => {
        const msg = (key: string, v: string) =>
            `${key}: ${JSON.stringify(v)} is not valid; an image on registry.digitalocean.com is registry.digitalocean.com/<registry>/<repository>:<tag>, the registry name of lower-case letters, digits and '-'`;
        expectError(
            { apiImage: "registry.digitalocean.com/stateful-flask:v1.0.0" },
            msg("apiImage", "registry.digitalocean.com/stateful-flask:v1.0.0"),
        );
        expectError(
            { postgresImage: "registry.digitalocean.com/postgres:15.20-1", docrPullAccess: "false" },
            msg("postgresImage", "registry.digitalocean.com/postgres:15.20-1"),
        );
    });

    it("rejects a docrPullAccess that is not true or false", () => {
        expectError({ docrPullAccess: "auto" }, 'docrPullAccess: "auto" is not valid; expected true or false');
    });

    it("refuses an application role that is the superuser or the replication role, before any component runs", () => {
        for (const user of ["postgres", "replicator"]) {
            expectError(
                { postgresUser: user },
                `postgresUser: ${JSON.stringify(user)} is not valid; expected a role other than postgres (the superuser) and replicator (replication)`,
            );
        }
    });

    it("offers the ingress component's controllers and none, and nothing else", () => {
        expectError(
            { ingressController: "nginx" },
            'ingressController: "nginx" is not valid; expected one of traefik, existing, none',
        );
        expectError(
            { manageDns: "true", ingressController: "existing" },
            "manageDns: true is not valid; the A record points at the load balancer of the ingress controller this program installs; set ingressController traefik",
        );
    });

    it("requires the members on separate nodes when the node pool always has a node for each, prefers it otherwise", () => {
        const spread = (values: Record<string, string>) =>
            parseConfig("test", reader({ ...minimal, ...values })).postgres.spread;
        assert.deepStrictEqual(spread({}), {
            antiAffinity: "required",
            note: "required: each of the 1 member on a node of its own (the pool keeps at least 3); a member whose node is lost waits, Pending, until a node is free, and never shares one (docs/failover.md)",
        });
        assert.strictEqual(spread({ postgresReplicas: "3" }).antiAffinity, "required");
        assert.strictEqual(
            spread({ postgresReplicas: "3", autoScale: "true", minNodes: "3", maxNodes: "6" }).antiAffinity,
            "required",
        );
        assert.deepStrictEqual(spread({ postgresReplicas: "3", nodeCount: "2" }), {
            antiAffinity: "preferred",
            note: "preferred: the node pool has 2 nodes (nodeCount), fewer than the 3 members, so two members may share a node and its loss takes both, the leader and its synchronous standby among them; set nodeCount to at least 3 to make it required (docs/failover.md)",
        });
        // The autoscaler may take the pool down to minNodes, whatever maxNodes allows.
        assert.deepStrictEqual(spread({ postgresReplicas: "3", autoScale: "true", minNodes: "1", maxNodes: "5" }), {
            antiAffinity: "preferred",
            note: "preferred: the node pool can shrink to 1 node (minNodes), fewer than the 3 members, so two members may share a node and its loss takes both, the leader and its synchronous standby among them; set minNodes to at least 3 to make it required (docs/failover.md)",
        });
        assert.deepStrictEqual(memberSpread({ mode: "existing" }, 3), {
            antiAffinity: "preferred",
            note: "preferred: this program does not size an existing cluster's nodes (the local cluster has one), so two of the 3 members may share a node and its loss takes both (docs/failover.md)",
        });
    });

    it("rejects a malformed version prefix and CIDR", () => {
        expectError(
            { kubernetesVersionPrefix: "latest" },
            'kubernetesVersionPrefix: "latest" is not valid; expected a version prefix such as 1.35. or 1.35.1',
        );
        expectError(
            { replicationCidr: "10.244.0.0" },
            'replicationCidr: "10.244.0.0" is not valid; expected an IPv4 CIDR block such as 10.244.0.0/16',
        );
    });
});

describe("validators", () => {
    it("accept pinned images in their common forms", () => {
        for (const image of [
            "postgres:15.20-bookworm",
            "registry.digitalocean.com/drexii/stateful-flask:v1.0.0",
            "localhost:5000/stateful-flask:1.2",
            `ghcr.io/org/app@sha256:${"a".repeat(64)}`,
            `ghcr.io/org/app:v1@sha256:${"b".repeat(64)}`,
        ]) {
            assert.strictEqual(validatePinnedImage("apiImage", image), image);
        }
    });

    it("parse quantities into bytes", () => {
        assert.strictEqual(quantityToBytes("k", "5Gi"), 5 * 2 ** 30);
        assert.strictEqual(quantityToBytes("k", "1.5Ti"), 1.5 * 2 ** 40);
        assert.strictEqual(quantityToBytes("k", "10G"), 10e9);
        assert.strictEqual(validateStorageSize("k", "1Gi"), "1Gi");
    });

    it("accept wildcard and nested hosts", () => {
        assert.strictEqual(validateHost("h", "*.drexii.me"), "*.drexii.me");
        assert.strictEqual(validateHost("h", "api.eu.drexii.me"), "api.eu.drexii.me");
    });
});
