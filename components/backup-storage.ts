import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ConfigError, validateHost, validateInteger, validateOneOf } from "./validate";

/**
 * Regions with Spaces: DigitalOcean's availability matrix (March 2026) and the provider's own list
 * (terraform-provider-digitalocean SpacesRegions since v2.61.0). Fewer than the regions with Kubernetes: nyc1,
 * nyc2, sfo1 and ams2 have none. The SDK's Region enum is no guide here, as it lists every Droplet region.
 */
export const SPACES_REGIONS = [
    "ams3",
    "atl1",
    "blr1",
    "fra1",
    "lon1",
    "nyc3",
    "sfo2",
    "sfo3",
    "sgp1",
    "syd1",
    "tor1",
] as const;

/** Incomplete multipart uploads (an interrupted backup's parts) are aborted after this many days. */
export const ABORT_INCOMPLETE_UPLOAD_DAYS = 7;

// DigitalOcean's rule for bucket names, without dots: a dotted name does not match the wildcard certificate of
// <region>.digitaloceanspaces.com, so virtual-host-style requests (pgBackRest's default) would fail TLS.
const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** A Spaces bucket name: 3-63 lower-case letters, digits and '-', starting and ending with a letter or digit. */
export function validateBucketName(key: string, value: unknown, hint = ""): string {
    if (typeof value !== "string" || !BUCKET_NAME.test(value)) {
        throw new ConfigError(
            key,
            value,
            `expected a bucket name of 3 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit (no dots: they break TLS for virtual-host-style requests)${hint}`,
        );
    }
    return value;
}

/** A region name of an S3-compatible store: lower-case letters, digits and '-', e.g. `fra1` or `us-east-1`. */
export function validateRegionName(key: string, value: unknown): string {
    if (typeof value !== "string" || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(value)) {
        throw new ConfigError(
            key,
            value,
            "expected a region name of lower-case letters, digits and '-', such as fra1 or us-east-1",
        );
    }
    return value;
}

/** An S3 endpoint: a host name only, as pgBackRest's repo1-s3-endpoint takes it. */
export function validateEndpoint(key: string, value: unknown): string {
    try {
        return validateHost(key, value);
    } catch {
        throw new ConfigError(
            key,
            value,
            "expected the S3 endpoint's host name, such as fra1.digitaloceanspaces.com (no scheme, port or path)",
        );
    }
}

/** The S3 endpoint of a Spaces region, e.g. `fra1.digitaloceanspaces.com`. */
export function spacesEndpoint(region: string): string {
    return `${region}.digitaloceanspaces.com`;
}

/**
 * In `create` mode a restore (`restoreFrom`) reads this stack's own bucket, with the key made for it, which reads no
 * other: the bucket must exist already (the stack's own history, as after a total loss). A new stack's bucket would
 * be created empty and the restore could never start, so this refuses it, before anything is registered.
 */
export async function validateRestoreBucket(
    bucket: string,
    region: string,
    restoreFrom: string,
    opts?: pulumi.InvokeOptions,
): Promise<void> {
    const found = await digitalocean.getSpacesBuckets(
        {
            filters: [
                { key: "name", values: [bucket] },
                { key: "region", values: [region] },
            ],
        },
        opts,
    );
    if (found.buckets.length === 0) {
        throw new ConfigError(
            "restoreFrom",
            restoreFrom,
            `backupMode spaces reads restoreFrom in this stack's own bucket ${bucket} (${region}), which ` +
                "does not exist yet: this deployment would create it empty, and the key it makes can read no other bucket. To restore another stack's " +
                "repository into a new stack, reach the source's bucket with backupMode existing: pulumi config set backupMode existing, " +
                "backupBucket <the source's bucket>, backupRegion <its region>, --secret backupAccessKeyId <its key>, --secret backupSecretAccessKey " +
                "<its secret>, --secret backupCipherPassphrase <the source's passphrase>, and a backupPath of this stack's own (docs/backups.md, \"Restoring\")",
        );
    }
}

/** Arguments of {@link BackupStorage}. */
export interface BackupStorageArgs {
    /**
     * `create`: a new private, versioned bucket and a key that can use only that bucket. `existing`: a bucket made
     * elsewhere, with the key given in `accessKeyId` and `secretAccessKey`; nothing is created. @default "create"
     */
    readonly mode?: "create" | "existing";
    /** The bucket's name. Spaces names are shared by every DigitalOcean customer, so choose one that is yours. */
    readonly bucket: string;
    /** The bucket's region, e.g. `fra1`; one of {@link SPACES_REGIONS} in `create` mode. */
    readonly region: string;
    /** The S3 endpoint host. @default `<region>.digitaloceanspaces.com` */
    readonly endpoint?: string;
    /**
     * Days an overwritten or deleted object version is kept before the bucket expires it (`create` mode). Pass the
     * point-in-time window: what pgBackRest expires stays recoverable that much longer. @default 7
     */
    readonly noncurrentVersionDays?: number;
    /** The key of an existing bucket (`existing` mode only; a secret). */
    readonly accessKeyId?: pulumi.Input<string>;
    /** The secret of that key (`existing` mode only; a secret). */
    readonly secretAccessKey?: pulumi.Input<string>;
    /**
     * The passphrase of the backup repository's encryption (a secret). Losing it loses every backup.
     * @default 64 random letters and digits, generated once and protected
     */
    readonly cipherPassphrase?: pulumi.Input<string>;
    /** Protect the bucket and the generated passphrase against `pulumi destroy` and replacement. @default true */
    readonly protect?: boolean;
}

/**
 * Where pgBackRest keeps the database's backups and WAL archive: a DigitalOcean Spaces bucket, its key, and the
 * repository's encryption passphrase. In `create` mode it makes the bucket (private, versioned, lifecycle rules
 * below) and a key limited to it; in `existing` mode it only carries a bucket and key made elsewhere.
 *
 * Object lock (write-once retention) would make the history immune to a leaked key; Spaces does not offer it and
 * the provider has no argument for it, so versioning with a noncurrent-version expiry is the protection used
 * (docs/decisions.md, "Backup bucket: versioned, no object lock").
 */
export class BackupStorage extends pulumi.ComponentResource {
    /** The bucket, in `create` mode. */
    public readonly bucket?: digitalocean.SpacesBucket;
    /** The key limited to the bucket, in `create` mode. */
    public readonly key?: digitalocean.SpacesKey;
    /** The generated passphrase, when none was given. */
    public readonly generatedPassphrase?: random.RandomPassword;
    public readonly bucketName: pulumi.Output<string>;
    public readonly region: string;
    /** The S3 endpoint host, e.g. `fra1.digitaloceanspaces.com`. */
    public readonly endpoint: string;
    /** S3 credentials for the bucket (secrets). */
    public readonly accessKeyId: pulumi.Output<string>;
    public readonly secretAccessKey: pulumi.Output<string>;
    /** The repository's encryption passphrase (secret). */
    public readonly cipherPassphrase: pulumi.Output<string>;

    constructor(name: string, args: BackupStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:backup:BackupStorage", name, {}, opts);

        // Errors name the configuration keys these arguments come from (config.ts checks them first, with the same rules).
        const mode = validateOneOf("mode", args.mode ?? "create", ["create", "existing"] as const);
        const bucketName = validateBucketName("backupBucket", args.bucket);
        // A bucket made here, or reached through the derived endpoint, is in Spaces; another S3-compatible store
        // (an existing bucket behind its own endpoint) names its regions its own way.
        this.region =
            mode === "create" || args.endpoint === undefined
                ? validateOneOf("backupRegion", args.region, SPACES_REGIONS)
                : validateRegionName("backupRegion", args.region);
        this.endpoint = validateEndpoint("backupEndpoint", args.endpoint ?? spacesEndpoint(this.region));
        const noncurrentVersionDays = validateInteger("backupRetentionDays", args.noncurrentVersionDays ?? 7, 1, 3650);
        const protect = args.protect ?? true;

        if (mode === "create") {
            if (args.accessKeyId !== undefined || args.secretAccessKey !== undefined) {
                throw new ConfigError(
                    args.accessKeyId !== undefined ? "backupAccessKeyId" : "backupSecretAccessKey",
                    "(secret)",
                    "backupMode spaces makes its own key, limited to the bucket it creates; a key is given only with backupMode existing",
                );
            }
            // The bucket holds every backup: protected like the data, and kept (retainOnDelete) when a protected
            // stack is destroyed. forceDestroy false: a bucket with objects is never emptied by a delete. Its name and
            // region identify it: a new value for either is a new, empty bucket, which protect refuses to swap in.
            this.bucket = new digitalocean.SpacesBucket(
                name,
                {
                    name: bucketName,
                    region: this.region,
                    acl: "private",
                    // Overwritten and deleted objects stay as noncurrent versions: an object pgBackRest expires, or one a
                    // leaked key deletes, can be recovered for noncurrentVersionDays. Versioning can be suspended later,
                    // never removed.
                    versioning: { enabled: true },
                    lifecycleRules: [
                        {
                            id: "pgbackrest-history",
                            enabled: true,
                            noncurrentVersionExpiration: { days: noncurrentVersionDays },
                            abortIncompleteMultipartUploadDays: ABORT_INCOMPLETE_UPLOAD_DAYS,
                        },
                    ],
                    forceDestroy: false,
                },
                { parent: this, protect, retainOnDelete: protect },
            );

            // Spaces keys can be scoped to buckets: this one reads and writes this bucket and nothing else in the
            // account. It is not protected: a replaced key only means new credentials in the pods' Secret.
            this.key = new digitalocean.SpacesKey(
                `${name}-key`,
                {
                    name: `${bucketName}-readwrite`,
                    grants: [{ bucket: this.bucket.name, permission: "readwrite" }],
                },
                { parent: this },
            );

            this.bucketName = this.bucket.name;
            this.accessKeyId = pulumi.secret(this.key.accessKey);
            this.secretAccessKey = pulumi.secret(this.key.secretKey);
        } else {
            if (args.accessKeyId === undefined || args.secretAccessKey === undefined) {
                throw new ConfigError(
                    args.accessKeyId === undefined ? "backupAccessKeyId" : "backupSecretAccessKey",
                    undefined,
                    "backupMode existing needs the bucket's key: pulumi config set --secret backupAccessKeyId <key> and pulumi config set --secret backupSecretAccessKey <secret>",
                );
            }
            this.bucketName = pulumi.output(bucketName);
            this.accessKeyId = pulumi.secret(args.accessKeyId);
            this.secretAccessKey = pulumi.secret(args.secretAccessKey);
        }

        // Every backup is encrypted with this passphrase: a new one could not read the backups already made, so the
        // generated one is protected like the bucket. 64 letters and digits need no quoting in pgBackRest's config.
        let passphrase = args.cipherPassphrase;
        if (passphrase === undefined) {
            this.generatedPassphrase = new random.RandomPassword(
                `${name}-cipher-passphrase`,
                { length: 64, special: false },
                { parent: this, protect },
            );
            passphrase = this.generatedPassphrase.result;
        }
        this.cipherPassphrase = pulumi.secret(passphrase);

        this.registerOutputs({
            bucketName: this.bucketName,
            region: this.region,
            endpoint: this.endpoint,
            accessKeyId: this.accessKeyId,
            secretAccessKey: this.secretAccessKey,
            cipherPassphrase: this.cipherPassphrase,
        });
    }
}
