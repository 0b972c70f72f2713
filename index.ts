/**
 * Composition only: read the stack's configuration, create the components, export the outputs.
 * Every input is validated (loadConfig, the DOKS version lookup, and a restore's bucket) before the first resource is
 * registered; the program is an async function so that the lookups can be awaited first.
 */
import * as pulumi from "@pulumi/pulumi";
import { digitalOceanToken, loadConfig, requireSpacesCredentials } from "./config";
import { BackupStorage, validateRestoreBucket } from "./components/backup-storage";
import { IDENTITY_OUTPUT, refuseIdentityChange } from "./components/database-identity";
import { DoksCluster, resolveKubernetesVersion } from "./components/doks-cluster";
import { ExistingCluster } from "./components/existing-cluster";
import { ApiIngress } from "./components/ingress";
import { Postgres, type PostgresBackupArgs } from "./components/postgres";
import { TasksApi } from "./components/tasks-api";

export = async () => {
    const config = loadConfig();
    // The role and database exist only from bootstrap: a changed name is refused before anything is registered.
    const identity = { user: config.postgres.user, database: config.postgres.database };
    await refuseIdentityChange(identity);
    const c = config.cluster;
    const b = config.backup;
    if (b.mode === "spaces") {
        // The bucket needs Spaces credentials and its key the API token: fail now, not mid-update.
        requireSpacesCredentials();
        if (c.mode !== "digitalocean") {
            digitalOceanToken("backupMode spaces");
        }
        if (b.restoreFrom !== undefined) {
            await validateRestoreBucket(b.bucket, b.region, b.restoreFrom.path);
        }
    }

    let target: DoksCluster | ExistingCluster;
    if (c.mode === "digitalocean") {
        const apiToken = digitalOceanToken();
        const kubernetesVersion = await resolveKubernetesVersion(c.kubernetesVersionPrefix);
        target = new DoksCluster(c.name, {
            region: c.region,
            kubernetesVersion,
            nodeSize: c.nodeSize,
            nodeCount: c.nodeCount,
            autoScale: c.autoScale,
            minNodes: c.minNodes,
            maxNodes: c.maxNodes,
            haControlPlane: c.haControlPlane,
            surgeUpgrade: c.surgeUpgrade,
            autoUpgrade: c.autoUpgrade,
            maintenanceDay: c.maintenanceDay,
            maintenanceStartTime: c.maintenanceStartTime,
            vpcIpRange: c.vpcIpRange,
            clusterSubnet: c.clusterSubnet,
            serviceSubnet: c.serviceSubnet,
            controlPlaneAllowedAddresses: c.controlPlaneAllowedAddresses,
            apiToken,
            protect: config.protectData,
        });
    } else {
        if (config.registryAccess.api !== undefined || config.registryAccess.postgres !== undefined) {
            // DOCR credentials are made by the DigitalOcean provider: without a token, fail now, not mid-update.
            digitalOceanToken("docrPullAccess with an image on registry.digitalocean.com");
        }
        target = new ExistingCluster("existing", { context: c.kubeconfigContext });
    }
    const onCluster = { provider: target.provider };

    // The bucket and its key are made on the DigitalOcean provider, not the cluster's: they outlive any cluster.
    let backup: PostgresBackupArgs | undefined;
    if (b.mode !== "off") {
        const storage = new BackupStorage("backups", {
            mode: b.mode === "spaces" ? "create" : "existing",
            bucket: b.bucket,
            region: b.region,
            endpoint: b.endpoint,
            noncurrentVersionDays: b.retentionDays,
            accessKeyId: b.mode === "existing" ? b.accessKeyId : undefined,
            secretAccessKey: b.mode === "existing" ? b.secretAccessKey : undefined,
            cipherPassphrase: b.cipherPassphrase,
            protect: config.protectData,
        });
        backup = {
            endpoint: storage.endpoint,
            region: storage.region,
            bucket: storage.bucketName,
            path: b.path,
            accessKeyId: storage.accessKeyId,
            secretAccessKey: storage.secretAccessKey,
            cipherPassphrase: storage.cipherPassphrase,
            schedule: b.schedule,
            retentionFull: b.retentionFull,
            archiveTimeout: b.archiveTimeout,
            restoreFrom: b.restoreFrom,
            uriStyle: b.uriStyle,
            caCertificate: b.caCertificate,
        };
    }

    const postgres = new Postgres(
        "postgres",
        {
            namespace: config.postgres.namespace,
            replicas: config.postgres.replicas,
            image: config.postgres.image,
            synchronousMode: config.postgres.synchronousMode,
            storageSize: config.postgres.storageSize,
            storageClass: config.postgres.storageClass,
            database: config.postgres.database,
            user: config.postgres.user,
            replicationCidr: config.postgres.replicationCidr,
            antiAffinity: config.postgres.spread.antiAffinity,
            password: config.postgres.password,
            replicationPassword: config.postgres.replicationPassword,
            superuserPassword: config.postgres.superuserPassword,
            docrRegistry: config.registryAccess.postgres,
            tls: config.postgres.tls ? (config.postgres.tlsSeed ? { seed: config.postgres.tlsSeed } : true) : false,
            patroniApiPassword: config.postgres.patroniApiPassword,
            clientNamespaces: [config.api.namespace],
            partOf: config.partOf,
            protect: config.protectData,
            backup,
        },
        onCluster,
    );

    if (config.postgres.spread.antiAffinity === "preferred" && config.postgres.replicas > 1) {
        // Said on every preview and update, not only in an output nobody reads.
        pulumi.log.warn(`postgresSpread ${config.postgres.spread.note}`, postgres);
    }

    const api = new TasksApi(
        "api",
        {
            namespace: config.api.namespace,
            name: config.api.name,
            image: config.api.image,
            docrRegistry: config.registryAccess.api,
            replicas: config.api.replicas,
            port: config.api.port,
            partOf: config.partOf,
            database: {
                host: postgres.host,
                port: postgres.port,
                database: postgres.database,
                user: postgres.user,
                password: postgres.password,
                clientLabels: postgres.clientLabels,
                readiness: postgres.statefulSet,
                caCertificate: postgres.caCertificate,
            },
        },
        onCluster,
    );

    const ingress =
        config.ingress.controller === "none"
            ? undefined
            : new ApiIngress(
                  "ingress",
                  {
                      host: config.ingress.host,
                      namespace: api.namespaceName,
                      serviceName: api.serviceName,
                      servicePort: api.servicePort,
                      controller: config.ingress.controller,
                      className: config.ingress.className,
                      tls: config.ingress.tls,
                      tlsEmail: config.ingress.tlsEmail,
                      manageDns: config.ingress.manageDns,
                  },
                  { ...onCluster, dependsOn: [api] },
              );

    return {
        ...(target instanceof DoksCluster ? { kubeconfig: target.kubeconfig, kubernetesVersion: target.version } : {}),
        ...(ingress ? { ingressAddress: ingress.address } : {}),
        apiUrl:
            ingress?.url ??
            `kubectl -n ${api.namespaceName} port-forward svc/${api.serviceName} 8080:${api.servicePort} (then http://localhost:8080)`,
        postgresHost: postgres.host,
        postgresReadOnlyHost: postgres.readOnlyHost,
        postgresHeadlessHost: postgres.headlessHost,
        postgresPods: postgres.podHosts,
        postgresPassword: postgres.password,
        postgresSynchronousMode: postgres.synchronousMode,
        // Read back by the next update (components/database-identity.ts).
        [IDENTITY_OUTPUT]: identity,
        postgresSpread: config.postgres.spread.note,
        ...(postgres.caCertificate ? { postgresCaCertificate: postgres.caCertificate } : {}),
        migrationJob: api.migrationJob.metadata.name,
        ...(backup
            ? {
                  backupBucket: backup.bucket,
                  backupPath: backup.path,
                  backupEndpoint: backup.endpoint,
                  // Every backup is encrypted with it: keep a copy outside this stack (docs/backups.md).
                  backupCipherPassphrase: backup.cipherPassphrase,
                  // The last backup and the WAL archive's state, from the leader (docs/backups.md, "Is it working?").
                  backupStatus: postgres.backupStatusCommand,
              }
            : {
                  backups: "OFF: this stack's database has no backup; set backupMode (docs/backups.md)",
              }),
    };
};
