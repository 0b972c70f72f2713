import * as assert from "node:assert";
import * as postgresModule from "../components/postgres";
import { tlsMaterial } from "../components/postgres-tls";
import { ConfigError, validateCronSchedule, validateTimestamp } from "../components/validate";
import {
    type AccountBucket,
    evaluate,
    MOCK_SPACES_KEY,
    type ProgramResource,
    type ProgramRun,
    unwrap,
} from "./helpers/program";
import { all, one, T } from "./helpers/resources";

const BUCKET = "digitalocean:index/spacesBucket:SpacesBucket";
const KEY = "digitalocean:index/spacesKey:SpacesKey";
const COMPONENT = "stateful-flask:backup:BackupStorage";
/** The dev stack's bucket, once it exists: a restore of the stack's own history (as after a total loss) reads it. */
const DEV_BUCKET: AccountBucket = { name: "stateful-flask-dev-pgbackrest", region: "fra1" };
const OFF = "OFF: this stack's database has no backup; set backupMode (docs/backups.md)";

/** A bucket made elsewhere, with its key, for backupMode existing. */
const EXISTING_BUCKET = {
    "stateful-flask:backupMode": "existing",
    "stateful-flask:backupBucket": "team-pg-backups",
    "stateful-flask:backupAccessKeyId": "DO00EXISTINGKEY",
    "stateful-flask:backupSecretAccessKey": "existing-secret",
};

/** The same on the local stack (an existing cluster: the bucket's region must be given). */
const EXISTING_BUCKET_LOCAL = { ...EXISTING_BUCKET, "stateful-flask:backupRegion": "fra1" };

/**
 * Evaluates the program and captures the arguments index.ts hands to the Postgres component. The component does
 * not register its `backup` argument anywhere yet (the pod side is wired separately), so the wiring is observed at
 * the constructor.
 */
async function evaluateCapturingPostgres(
    stack: "dev" | "local",
    overrides: Record<string, string | undefined> = {},
    buckets: AccountBucket[] = [],
) {
    const module = postgresModule as { Postgres: typeof postgresModule.Postgres };
    const original = module.Postgres;
    const captured: postgresModule.PostgresArgs[] = [];
    module.Postgres = class extends original {
        constructor(name: string, args: postgresModule.PostgresArgs, opts?: any) {
            captured.push(args);
            super(name, args, opts);
        }
    };
    try {
        const run = await evaluate(stack, overrides, false, {}, buckets);
        assert.strictEqual(captured.length, 1);
        return { run, postgresArgs: captured[0] as postgresModule.PostgresArgs & { backup?: Record<string, any> } };
    } finally {
        module.Postgres = original;
    }
}

/** The `backup` argument with every Output resolved, and the names of the fields that were secret. */
async function resolved(backup: Record<string, any>) {
    const values: Record<string, unknown> = {};
    const secrets: string[] = [];
    for (const [k, v] of Object.entries(backup)) {
        const u = await unwrap(v);
        values[k] = u.value;
        if (u.secret) {
            secrets.push(k);
        }
    }
    return { values, secrets: secrets.sort() };
}

const others = (run: ProgramRun | ProgramResource[]) =>
    (Array.isArray(run) ? run : run.resources).filter((r) => r.type !== "pulumi:pulumi:Stack");

describe("backups (dev stack): a Spaces bucket and a key limited to it", () => {
    let run: ProgramRun;
    let postgresArgs: Awaited<ReturnType<typeof evaluateCapturingPostgres>>["postgresArgs"];
    before(async () => {
        ({ run, postgresArgs } = await evaluateCapturingPostgres("dev"));
    });

    it("creates one private, versioned bucket in fra1 whose history outlives pgBackRest's expiry by 7 days", () => {
        const bucket = one(run.resources, BUCKET);
        assert.deepStrictEqual(bucket.inputs, {
            name: "stateful-flask-dev-pgbackrest",
            region: "fra1",
            acl: "private",
            versioning: { enabled: true },
            lifecycleRules: [
                {
                    id: "pgbackrest-history",
                    enabled: true,
                    noncurrentVersionExpiration: { days: 7 },
                    abortIncompleteMultipartUploadDays: 7,
                },
            ],
            forceDestroy: false,
        });
    });

    it("protects the bucket like the data and keeps it when a protected stack is destroyed", () => {
        const bucket = one(run.resources, BUCKET);
        assert.strictEqual(bucket.protect, true);
        assert.strictEqual(bucket.retainOnDelete, true);
        assert.strictEqual(
            bucket.provider,
            undefined,
            "the bucket is made by the default DigitalOcean provider, not the cluster's",
        );
    });

    it("makes a Spaces key that can read and write that bucket and nothing else", () => {
        const key = one(run.resources, KEY);
        assert.deepStrictEqual(key.inputs, {
            name: "stateful-flask-dev-pgbackrest-readwrite",
            grants: [{ bucket: "stateful-flask-dev-pgbackrest", permission: "readwrite" }],
        });
        assert.ok(key.dependencies.includes(one(run.resources, BUCKET).urn));
    });

    it("parents the bucket, the key and the passphrase under one BackupStorage component", () => {
        const component = one(run.resources, COMPONENT, "backups");
        const children = run.resources
            .filter((r) => r.parent === component.urn)
            .map((r) => `${r.type} ${r.name}`)
            .sort();
        assert.deepStrictEqual(children, [
            `${BUCKET} backups`,
            `${KEY} backups-key`,
            `${T.randomPassword} backups-cipher-passphrase`,
        ]);
    });

    it("generates the repository's passphrase once, 64 letters and digits, protected", () => {
        const [passphrase, ...more] = all(run.resources, T.randomPassword).filter(
            (r) => r.name === "backups-cipher-passphrase",
        );
        assert.deepStrictEqual(more, []);
        assert.deepStrictEqual(passphrase.inputs, { length: 64, special: false });
        assert.strictEqual(passphrase.protect, true);
    });

    it("hands the Postgres component the backup contract, its credentials and passphrase kept secret", async () => {
        assert.ok(postgresArgs.backup, "Postgres received no backup argument");
        const { values, secrets } = await resolved(postgresArgs.backup);
        assert.deepStrictEqual(values, {
            endpoint: "fra1.digitaloceanspaces.com",
            region: "fra1",
            bucket: "stateful-flask-dev-pgbackrest",
            path: "/stateful-flask/dev",
            accessKeyId: MOCK_SPACES_KEY.accessKey,
            secretAccessKey: MOCK_SPACES_KEY.secretKey,
            cipherPassphrase: "mockpasswordbackupscipherpassphrase",
            schedule: "0 3 * * *",
            retentionFull: 7,
            archiveTimeout: 60,
            restoreFrom: undefined,
            uriStyle: "host",
            caCertificate: undefined,
        });
        assert.deepStrictEqual(secrets, ["accessKeyId", "cipherPassphrase", "secretAccessKey"]);
    });

    it("exports the bucket, the repository path, the endpoint, and the passphrase as a secret; no warning", async () => {
        assert.strictEqual((await unwrap(run.exports.backupBucket)).value, "stateful-flask-dev-pgbackrest");
        assert.strictEqual((await unwrap(run.exports.backupPath)).value, "/stateful-flask/dev");
        assert.strictEqual((await unwrap(run.exports.backupEndpoint)).value, "fra1.digitaloceanspaces.com");
        assert.deepStrictEqual(await unwrap(run.exports.backupCipherPassphrase), {
            value: "mockpasswordbackupscipherpassphrase",
            secret: true,
        });
        assert.strictEqual(run.exports.backups, undefined);
        assert.strictEqual(
            run.exports.backupStatus,
            'kubectl -n postgres exec "$(kubectl -n postgres get pods -l app=postgres,role=master -o name)" -c postgres -- /usr/local/lib/stateful-flask-postgres/pod.py backup-status',
        );
    });

    it("keeps overwritten and deleted versions for backupRetentionDays", async () => {
        const next = await evaluate("dev", { "stateful-flask:backupRetentionDays": "30" });
        assert.deepStrictEqual(one(next.resources, BUCKET).inputs.lifecycleRules, [
            {
                id: "pgbackrest-history",
                enabled: true,
                noncurrentVersionExpiration: { days: 30 },
                abortIncompleteMultipartUploadDays: 7,
            },
        ]);
    });

    it("follows backupBucket, backupRegion and backupEndpoint", async () => {
        const { run: next, postgresArgs: args } = await evaluateCapturingPostgres("dev", {
            "stateful-flask:backupBucket": "drexii-pg-backups",
            "stateful-flask:backupRegion": "ams3",
            "stateful-flask:backupEndpoint": "ams3.digitaloceanspaces.com",
        });
        const bucket = one(next.resources, BUCKET);
        assert.strictEqual(bucket.inputs.name, "drexii-pg-backups");
        assert.strictEqual(bucket.inputs.region, "ams3");
        assert.deepStrictEqual(one(next.resources, KEY).inputs.grants, [
            { bucket: "drexii-pg-backups", permission: "readwrite" },
        ]);
        const { values } = await resolved(args.backup!);
        assert.strictEqual(values.endpoint, "ams3.digitaloceanspaces.com");
        assert.strictEqual(values.region, "ams3");
        assert.strictEqual(values.bucket, "drexii-pg-backups");
    });

    it("passes the schedule, retention, archive timeout and a restore source from the configuration", async () => {
        const { postgresArgs: args } = await evaluateCapturingPostgres(
            "dev",
            {
                "stateful-flask:backupSchedule": "30 1 * * 0,3",
                "stateful-flask:backupRetentionFull": "4",
                "stateful-flask:archiveTimeout": "300",
                "stateful-flask:backupPath": "/stateful-flask/dev-2",
                "stateful-flask:restoreFrom": "/stateful-flask/dev",
                "stateful-flask:restoreTargetTime": "2026-11-24T14:01:00Z",
            },
            [DEV_BUCKET],
        );
        const { values } = await resolved(args.backup!);
        assert.strictEqual(values.schedule, "30 1 * * 0,3");
        assert.strictEqual(values.retentionFull, 4);
        assert.strictEqual(values.archiveTimeout, 300);
        assert.strictEqual(values.path, "/stateful-flask/dev-2");
        assert.deepStrictEqual(values.restoreFrom, { path: "/stateful-flask/dev", targetTime: "2026-11-24T14:01:00Z" });
    });

    it("refuses restoreFrom at preview when the bucket it would read is yet to be created (a new stack): its key could read no other", async () => {
        // The account holds buckets of that name elsewhere and others in fra1, not this one.
        const account = [
            { ...DEV_BUCKET, region: "ams3" },
            { ...DEV_BUCKET, name: "stateful-flask-other-pgbackrest" },
        ];
        const overrides = {
            "stateful-flask:restoreFrom": "/stateful-flask/dev",
            "stateful-flask:backupPath": "/stateful-flask/dev-restored",
        };
        const failure = await evaluate("dev", overrides, true, {}, account).then(
            () => undefined,
            (e: Error & { registered?: ProgramResource[] }) => e,
        );
        assert.ok(failure, "a restore from a bucket that does not exist yet was accepted");
        assert.strictEqual(
            failure.message,
            'restoreFrom: "/stateful-flask/dev" is not valid; backupMode spaces reads restoreFrom in this stack\'s own ' +
                "bucket stateful-flask-dev-pgbackrest (fra1), which does not exist yet: this deployment would create it empty, and the key it makes can " +
                "read no other bucket. To restore another stack's repository into a new stack, reach the source's bucket with backupMode existing: " +
                "pulumi config set backupMode existing, backupBucket <the source's bucket>, backupRegion <its region>, --secret backupAccessKeyId " +
                "<its key>, --secret backupSecretAccessKey <its secret>, --secret backupCipherPassphrase <the source's passphrase>, and a backupPath " +
                'of this stack\'s own (docs/backups.md, "Restoring")',
        );
        assert.deepStrictEqual(
            (failure.registered ?? []).map((r) => r.type),
            ["pulumi:pulumi:Stack"],
            "nothing but the stack registered",
        );
    });

    it("takes the passphrase from the stack secret when set, and generates none", async () => {
        const { run: next, postgresArgs: args } = await evaluateCapturingPostgres("dev", {
            "stateful-flask:backupCipherPassphrase": "a-passphrase-kept-elsewhere-too",
        });
        assert.deepStrictEqual(
            all(next.resources, T.randomPassword).filter((r) => r.name === "backups-cipher-passphrase"),
            [],
        );
        assert.deepStrictEqual(await unwrap(args.backup!.cipherPassphrase), {
            value: "a-passphrase-kept-elsewhere-too",
            secret: true,
        });
        assert.deepStrictEqual(await unwrap(next.exports.backupCipherPassphrase), {
            value: "a-passphrase-kept-elsewhere-too",
            secret: true,
        });
    });

    it("with protectData false, neither protects nor retains the bucket and the passphrase", async () => {
        const next = await evaluate("dev", { "stateful-flask:protectData": "false" });
        const bucket = one(next.resources, BUCKET);
        assert.strictEqual(bucket.protect, false);
        assert.strictEqual(bucket.retainOnDelete, false);
        assert.strictEqual(one(next.resources, T.randomPassword, "backups-cipher-passphrase").protect, false);
    });

    it("reads the provider's Spaces credentials from the environment as well as from config", async () => {
        const saved = { id: process.env.SPACES_ACCESS_KEY_ID, secret: process.env.SPACES_SECRET_ACCESS_KEY };
        process.env.SPACES_ACCESS_KEY_ID = "DO00ENVKEY";
        process.env.SPACES_SECRET_ACCESS_KEY = "env-secret";
        try {
            const next = await evaluate("dev", {
                "digitalocean:spacesAccessId": undefined,
                "digitalocean:spacesSecretKey": undefined,
            });
            assert.strictEqual(all(next.resources, BUCKET).length, 1);
        } finally {
            restoreEnv(saved);
        }
    });
});

describe("backups in an existing bucket (backupMode existing)", () => {
    it("creates no bucket and no key, and hands Postgres the configured bucket and key as secrets", async () => {
        const { run, postgresArgs } = await evaluateCapturingPostgres("dev", EXISTING_BUCKET);
        assert.deepStrictEqual(all(run.resources, BUCKET), []);
        assert.deepStrictEqual(all(run.resources, KEY), []);
        const { values, secrets } = await resolved(postgresArgs.backup!);
        assert.strictEqual(values.bucket, "team-pg-backups");
        assert.strictEqual(values.region, "fra1");
        assert.strictEqual(values.endpoint, "fra1.digitaloceanspaces.com");
        assert.strictEqual(values.accessKeyId, "DO00EXISTINGKEY");
        assert.strictEqual(values.secretAccessKey, "existing-secret");
        assert.deepStrictEqual(secrets, ["accessKeyId", "cipherPassphrase", "secretAccessKey"]);
        assert.strictEqual((await unwrap(run.exports.backupBucket)).value, "team-pg-backups");
    });

    it("works on an existing cluster without any DigitalOcean credentials, only the passphrase generated", async () => {
        const { run, postgresArgs } = await evaluateCapturingPostgres("local", {
            ...EXISTING_BUCKET,
            "stateful-flask:backupRegion": "nyc3",
            "digitalocean:token": undefined,
            "digitalocean:spacesAccessId": undefined,
            "digitalocean:spacesSecretKey": undefined,
        });
        const component = one(run.resources, COMPONENT, "backups");
        assert.deepStrictEqual(
            run.resources.filter((r) => r.parent === component.urn).map((r) => r.name),
            ["backups-cipher-passphrase"],
        );
        assert.strictEqual((await unwrap(postgresArgs.backup!.endpoint)).value, "nyc3.digitaloceanspaces.com");
        assert.strictEqual((await unwrap(run.exports.backupPath)).value, "/stateful-flask/local");
    });

    it("accepts another S3-compatible store behind backupEndpoint, with its own region names", async () => {
        const { postgresArgs } = await evaluateCapturingPostgres("local", {
            ...EXISTING_BUCKET,
            "stateful-flask:backupRegion": "us-east-1",
            "stateful-flask:backupEndpoint": "s3.us-east-1.amazonaws.com",
        });
        const { values } = await resolved(postgresArgs.backup!);
        assert.strictEqual(values.region, "us-east-1");
        assert.strictEqual(values.endpoint, "s3.us-east-1.amazonaws.com");
    });
});

describe("backups in a private S3-compatible store (backupUriStyle, backupCaCertificate)", () => {
    // A throwaway CA, as a store such as MinIO or versitygw behind a private CA would have.
    const CA = tlsMaterial("a-seed-for-a-test-ca-0123456789", ["s3.example.internal"]).caCert;
    const PRIVATE_STORE = {
        ...EXISTING_BUCKET,
        "stateful-flask:backupRegion": "us-east-1",
        "stateful-flask:backupEndpoint": "s3.example.internal",
        "stateful-flask:backupUriStyle": "path",
        "stateful-flask:backupCaCertificate": CA,
    };

    it("sends path-style requests and verifies the store against its CA, mounted from a ConfigMap", async () => {
        const run = await evaluate("local", PRIVATE_STORE);
        const sts = one(run.resources, T.statefulSet, "postgres");
        const container = sts.inputs.spec.template.spec.containers[0];
        const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
        assert.strictEqual(env.BACKUP_S3_URI_STYLE, "path");
        assert.strictEqual(env.BACKUP_S3_ENDPOINT, "s3.example.internal");
        assert.strictEqual(env.BACKUP_S3_CA_FILE, "/etc/postgres-backup-ca/ca.crt");
        const ca = one(run.resources, T.configMap, "postgres-backup-ca");
        assert.strictEqual(ca.inputs.metadata.namespace, "postgres");
        assert.strictEqual(ca.inputs.data["ca.crt"], CA);
        assert.deepStrictEqual(
            container.volumeMounts.find((m: any) => m.name === "backup-ca"),
            { name: "backup-ca", mountPath: "/etc/postgres-backup-ca", readOnly: true },
        );
        assert.deepStrictEqual(
            sts.inputs.spec.template.spec.volumes.find((v: any) => v.name === "backup-ca"),
            { name: "backup-ca", configMap: { name: "postgres-backup-ca" } },
        );
        assert.ok(sts.dependencies.includes(ca.urn));
    });

    it("defaults to host-style requests and the public CAs", async () => {
        const run = await evaluate("local", EXISTING_BUCKET_LOCAL);
        const env = Object.fromEntries(
            one(run.resources, T.statefulSet, "postgres").inputs.spec.template.spec.containers[0].env.map((e: any) => [
                e.name,
                e.value,
            ]),
        );
        assert.strictEqual(env.BACKUP_S3_URI_STYLE, "host");
        assert.strictEqual(env.BACKUP_S3_CA_FILE, undefined);
        assert.deepStrictEqual(
            all(run.resources, T.configMap).filter((c) => c.name === "postgres-backup-ca"),
            [],
        );
    });

    for (const [what, stack, overrides, message] of [
        [
            "an unknown URI style",
            "local",
            { ...PRIVATE_STORE, "stateful-flask:backupUriStyle": "virtual" },
            'backupUriStyle: "virtual" is not valid; expected one of host, path',
        ],
        [
            "a CA that is not PEM",
            "local",
            { ...PRIVATE_STORE, "stateful-flask:backupCaCertificate": "not a certificate" },
            'backupCaCertificate: "not a certificate" is not valid; expected PEM certificates (-----BEGIN CERTIFICATE----- ...), such as the contents of the S3 server\'s CA file',
        ],
        [
            "a URI style for the bucket Spaces holds",
            "dev",
            { "stateful-flask:backupUriStyle": "path" },
            'backupUriStyle: "path" is not valid; backupMode spaces reaches its bucket in DigitalOcean Spaces host-style with the public CAs; this key is for backupMode existing with another S3 store',
        ],
    ] as const) {
        it(`refuses ${what}, before anything is registered`, async () => {
            await assert.rejects(evaluate(stack, overrides), (err: any) => {
                assert.ok(err instanceof ConfigError, `${err?.name}: ${err?.message}`);
                assert.strictEqual(err.message, message);
                assert.deepStrictEqual(
                    ((err as any).registered as ProgramResource[]).filter((r) => r.type !== "pulumi:pulumi:Stack"),
                    [],
                );
                return true;
            });
        });
    }
});

describe("backups off", () => {
    it("is the local stack's default: nothing is created, Postgres gets no backup, and the stack says so loudly", async () => {
        const { run, postgresArgs } = await evaluateCapturingPostgres("local");
        assert.deepStrictEqual(
            run.resources.filter((r) => r.type === COMPONENT || r.type === BUCKET || r.type === KEY),
            [],
        );
        assert.strictEqual(postgresArgs.backup, undefined);
        assert.strictEqual(run.exports.backups, OFF);
        for (const name of ["backupBucket", "backupPath", "backupEndpoint", "backupCipherPassphrase"]) {
            assert.strictEqual(run.exports[name], undefined, name);
        }
    });

    it("can be chosen on DigitalOcean, with the same warning", async () => {
        const { run, postgresArgs } = await evaluateCapturingPostgres("dev", { "stateful-flask:backupMode": "off" });
        assert.deepStrictEqual(all(run.resources, BUCKET), []);
        assert.deepStrictEqual(all(run.resources, COMPONENT), []);
        assert.strictEqual(postgresArgs.backup, undefined);
        assert.strictEqual(run.exports.backups, OFF);
    });
});

function restoreEnv(saved: { id?: string; secret?: string }): void {
    for (const [name, value] of [
        ["SPACES_ACCESS_KEY_ID", saved.id],
        ["SPACES_SECRET_ACCESS_KEY", saved.secret],
    ] as const) {
        if (value === undefined) {
            delete process.env[name];
        } else {
            process.env[name] = value;
        }
    }
}

describe("bad backup configuration fails before any resource is registered", () => {
    const REGIONS = "ams3, atl1, blr1, fra1, lon1, nyc3, sfo2, sfo3, sgp1, syd1, tor1";
    const BUCKET_RULE =
        "expected a bucket name of 3 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit (no dots: they break TLS for virtual-host-style requests)";
    const PATH_RULE =
        "expected an absolute path in the bucket such as /stateful-flask/dev (starts with /, segments of letters, digits, '.', '_' and '-', no trailing slash)";
    const CRON_SHAPE =
        'expected a 5-field cron expression "minute hour day-of-month month day-of-week" of numbers, *, ranges a-b, lists a,b and steps */n or a-b/n, such as "0 3 * * *"';
    const NEVER = (day: string, month: string) =>
        `day of month ${day} does not occur every year in month ${month}, so the schedule would never fire, ` +
        "or fire once in four years; expected days that occur every year in those months, such as 1-28";
    const TIME_RULE =
        "expected an ISO 8601 date and time with a UTC offset or Z, such as 2026-11-24T14:01:00Z or 2026-11-24T15:01:00+01:00";
    const OFF_RULE = (why: string) =>
        `backups are off (backupMode ${why}): set backupMode spaces or existing to use this key, or remove it`;
    const KEY_RULE =
        "backupMode existing needs the bucket's key: pulumi config set --secret backupAccessKeyId <key> and pulumi config set --secret backupSecretAccessKey <secret>";
    const SPACES_CREDENTIALS =
        "backupMode spaces creates a Spaces bucket, which needs Spaces credentials for the DigitalOcean provider: pulumi config set digitalocean:spacesAccessId <key> and pulumi config set --secret digitalocean:spacesSecretKey <secret>, or SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY in the environment (a Spaces key with full access, made once in the control panel)";

    const cases: Array<[string, "dev" | "local", Record<string, string | undefined>, string]> = [
        [
            "an unknown backupMode",
            "dev",
            { "stateful-flask:backupMode": "daily" },
            'backupMode: "daily" is not valid; expected one of spaces, existing, off',
        ],
        [
            "a backup key while backups are off by default (existing cluster)",
            "local",
            { "stateful-flask:backupBucket": "team-pg-backups" },
            `backupBucket: "team-pg-backups" is not valid; ${OFF_RULE("defaults to off in clusterMode existing")}`,
        ],
        [
            "a restore source while backups are turned off",
            "dev",
            { "stateful-flask:backupMode": "off", "stateful-flask:restoreFrom": "/stateful-flask/dev" },
            `restoreFrom: "/stateful-flask/dev" is not valid; ${OFF_RULE("is off")}`,
        ],
        [
            "a backup secret while backups are off, without printing it",
            "local",
            { "stateful-flask:backupCipherPassphrase": "do-not-print-me" },
            `backupCipherPassphrase: "(secret)" is not valid; ${OFF_RULE("defaults to off in clusterMode existing")}`,
        ],
        [
            "a bucket name with upper case and '_'",
            "dev",
            { "stateful-flask:backupBucket": "My_Backups" },
            `backupBucket: "My_Backups" is not valid; ${BUCKET_RULE}`,
        ],
        [
            "a bucket name with dots",
            "dev",
            { "stateful-flask:backupBucket": "backups.drexii.me" },
            `backupBucket: "backups.drexii.me" is not valid; ${BUCKET_RULE}`,
        ],
        [
            "a default bucket name that is too long",
            "dev",
            { "stateful-flask:clusterName": "stateful-flask-with-a-very-long-cluster-name-indeed" },
            `backupBucket: "stateful-flask-with-a-very-long-cluster-name-indeed-dev-pgbackrest" is not valid; ${BUCKET_RULE}; the default <clusterName>-<stack>-pgbackrest does not fit, so set backupBucket`,
        ],
        [
            "an existing bucket that is not named",
            "dev",
            { ...EXISTING_BUCKET, "stateful-flask:backupBucket": undefined },
            "backupBucket: undefined is not valid; this key is required: the name of the existing bucket that holds the backups (pulumi config set backupBucket <value>)",
        ],
        [
            "a bucket to create on an existing cluster without a name",
            "local",
            { "stateful-flask:backupMode": "spaces", "stateful-flask:backupRegion": "fra1" },
            "backupBucket: undefined is not valid; this key is required: the name of the bucket to create (clusterMode existing has no clusterName to derive it from) (pulumi config set backupBucket <value>)",
        ],
        [
            "a backupRegion without Spaces",
            "dev",
            { "stateful-flask:backupRegion": "nyc1" },
            `backupRegion: "nyc1" is not valid; expected a region with Spaces, one of ${REGIONS}`,
        ],
        [
            "a cluster region without Spaces as the default",
            "dev",
            { "stateful-flask:region": "nyc1" },
            `backupRegion: "nyc1" is not valid; expected a region with Spaces, one of ${REGIONS}; the default is the cluster's region, which has no Spaces: set backupRegion`,
        ],
        [
            "no region on an existing cluster",
            "local",
            { ...EXISTING_BUCKET },
            `backupRegion: undefined is not valid; this key is required: the bucket's region, one of ${REGIONS} (clusterMode existing has no region to default to) (pulumi config set backupRegion <value>)`,
        ],
        [
            "a malformed region for another S3 store",
            "local",
            {
                ...EXISTING_BUCKET,
                "stateful-flask:backupEndpoint": "minio.example.com",
                "stateful-flask:backupRegion": "US_EAST",
            },
            `backupRegion: "US_EAST" is not valid; expected a region name of lower-case letters, digits and '-', such as fra1 or us-east-1`,
        ],
        [
            "an endpoint with a scheme",
            "dev",
            { "stateful-flask:backupEndpoint": "https://fra1.digitaloceanspaces.com" },
            `backupEndpoint: "https://fra1.digitaloceanspaces.com" is not valid; expected the S3 endpoint's host name, such as fra1.digitaloceanspaces.com (no scheme, port or path)`,
        ],
        [
            "a relative backupPath",
            "dev",
            { "stateful-flask:backupPath": "stateful-flask/dev" },
            `backupPath: "stateful-flask/dev" is not valid; ${PATH_RULE}`,
        ],
        [
            "a backupPath with '..'",
            "dev",
            { "stateful-flask:backupPath": "/stateful-flask/../prod" },
            `backupPath: "/stateful-flask/../prod" is not valid; ${PATH_RULE}`,
        ],
        [
            "a backupPath with a trailing slash",
            "dev",
            { "stateful-flask:backupPath": "/stateful-flask/dev/" },
            `backupPath: "/stateful-flask/dev/" is not valid; ${PATH_RULE}`,
        ],
        [
            "a schedule of four fields",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 * *" },
            `backupSchedule: "0 3 * *" is not valid; ${CRON_SHAPE}`,
        ],
        [
            "a schedule macro",
            "dev",
            { "stateful-flask:backupSchedule": "@daily" },
            `backupSchedule: "@daily" is not valid; ${CRON_SHAPE}`,
        ],
        [
            "a schedule with day names",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 * * MON" },
            `backupSchedule: "0 3 * * MON" is not valid; ${CRON_SHAPE}`,
        ],
        [
            "a schedule hour out of range",
            "dev",
            { "stateful-flask:backupSchedule": "0 24 * * *" },
            'backupSchedule: "0 24 * * *" is not valid; the hour field allows 0-23 (got 24)',
        ],
        [
            "a schedule range that runs backwards",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 * * 5-1" },
            'backupSchedule: "0 3 * * 5-1" is not valid; the day of week range 5-1 runs backwards',
        ],
        [
            "a schedule step on a single number",
            "dev",
            { "stateful-flask:backupSchedule": "5/10 * * * *" },
            `backupSchedule: "5/10 * * * *" is not valid; ${CRON_SHAPE}`,
        ],
        [
            "a schedule that never fires (31 February)",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 31 2 *" },
            `backupSchedule: "0 3 31 2 *" is not valid; ${NEVER("31", "2")}`,
        ],
        [
            "a schedule that never fires (31 April, June)",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 31 4,6 *" },
            `backupSchedule: "0 3 31 4,6 *" is not valid; ${NEVER("31", "4,6")}`,
        ],
        [
            "a schedule whose day of month never occurs, with a weekday",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 30 2 1" },
            `backupSchedule: "0 3 30 2 1" is not valid; ${NEVER("30", "2")}`,
        ],
        [
            "a schedule that fires on 29 February only",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 29 2 *" },
            `backupSchedule: "0 3 29 2 *" is not valid; ${NEVER("29", "2")}`,
        ],
        [
            "a day of week covering every day beside a day of month",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 1 * 0-6" },
            'backupSchedule: "0 3 1 * 0-6" is not valid; both day fields are restricted, so a day matching either fires; the day of week field 0-6 ' +
                "covers every day, which cron implementations read differently then: write * for every day, or the days themselves (such as 1-5)",
        ],
        [
            "a day of month step */n beside a day of week",
            "dev",
            { "stateful-flask:backupSchedule": "0 3 */2 * 1" },
            'backupSchedule: "0 3 */2 * 1" is not valid; both day fields are restricted, so a day matching either fires; the day of month field */2 ' +
                "starts with *, which cron implementations read differently then: write * for every day, or the days themselves (such as 1-31/2)",
        ],
        [
            "a schedule step of 0",
            "dev",
            { "stateful-flask:backupSchedule": "*/0 * * * *" },
            'backupSchedule: "*/0 * * * *" is not valid; the minute step in */0 must be from 1 to 59',
        ],
        [
            "backupRetentionFull of 0",
            "dev",
            { "stateful-flask:backupRetentionFull": "0" },
            "backupRetentionFull: 0 is not valid; expected an integer from 1 to 100",
        ],
        [
            "backupRetentionFull above 100",
            "dev",
            { "stateful-flask:backupRetentionFull": "101" },
            "backupRetentionFull: 101 is not valid; expected an integer from 1 to 100",
        ],
        [
            "backupRetentionDays of 0",
            "dev",
            { "stateful-flask:backupRetentionDays": "0" },
            "backupRetentionDays: 0 is not valid; expected an integer from 1 to 3650",
        ],
        [
            "an archiveTimeout below 10 seconds",
            "dev",
            { "stateful-flask:archiveTimeout": "5" },
            "archiveTimeout: 5 is not valid; expected an integer from 10 to 3600",
        ],
        [
            "an archiveTimeout that is not an integer",
            "dev",
            { "stateful-flask:archiveTimeout": "1m" },
            'archiveTimeout: "1m" is not valid; expected an integer from 10 to 3600',
        ],
        [
            "restoreFrom equal to backupPath",
            "dev",
            { "stateful-flask:restoreFrom": "/stateful-flask/dev" },
            'restoreFrom: "/stateful-flask/dev" is not valid; expected a repository other than this stack\'s backupPath (/stateful-flask/dev) and not nested with it: the restored cluster archives to backupPath, so set backupPath to a new path',
        ],
        [
            "restoreFrom nesting backupPath",
            "dev",
            { "stateful-flask:restoreFrom": "/stateful-flask" },
            'restoreFrom: "/stateful-flask" is not valid; expected a repository other than this stack\'s backupPath (/stateful-flask/dev) and not nested with it: the restored cluster archives to backupPath, so set backupPath to a new path',
        ],
        [
            "a relative restoreFrom",
            "dev",
            { "stateful-flask:restoreFrom": "stateful-flask/prod" },
            `restoreFrom: "stateful-flask/prod" is not valid; ${PATH_RULE}`,
        ],
        [
            "restoreTargetTime without restoreFrom",
            "dev",
            { "stateful-flask:restoreTargetTime": "2026-11-24T14:01:00Z" },
            'restoreTargetTime: "2026-11-24T14:01:00Z" is not valid; a recovery target needs restoreFrom, the repository to recover from; set restoreFrom or remove restoreTargetTime',
        ],
        [
            "restoreTargetTime without a UTC offset",
            "dev",
            {
                "stateful-flask:restoreFrom": "/stateful-flask/prod",
                "stateful-flask:restoreTargetTime": "2026-11-24T14:01:00",
            },
            `restoreTargetTime: "2026-11-24T14:01:00" is not valid; ${TIME_RULE}`,
        ],
        [
            "restoreTargetTime on a day that does not exist",
            "dev",
            {
                "stateful-flask:restoreFrom": "/stateful-flask/prod",
                "stateful-flask:restoreTargetTime": "2026-02-30T12:00:00Z",
            },
            `restoreTargetTime: "2026-02-30T12:00:00Z" is not valid; ${TIME_RULE}`,
        ],
        [
            "a key of its own with backupMode spaces",
            "dev",
            { "stateful-flask:backupAccessKeyId": "DO00EXISTINGKEY" },
            'backupAccessKeyId: "(secret)" is not valid; backupMode spaces makes its own key, limited to the bucket it creates; a key is given only with backupMode existing',
        ],
        [
            "an existing bucket without its access key",
            "dev",
            { ...EXISTING_BUCKET, "stateful-flask:backupAccessKeyId": undefined },
            `backupAccessKeyId: undefined is not valid; ${KEY_RULE}`,
        ],
        [
            "an existing bucket without its secret",
            "dev",
            { ...EXISTING_BUCKET, "stateful-flask:backupSecretAccessKey": undefined },
            `backupSecretAccessKey: undefined is not valid; ${KEY_RULE}`,
        ],
        [
            "no Spaces credentials for the provider",
            "dev",
            { "digitalocean:spacesAccessId": undefined, "digitalocean:spacesSecretKey": undefined },
            `digitalocean:spacesAccessId: undefined is not valid; ${SPACES_CREDENTIALS}`,
        ],
        [
            "a Spaces access id without its secret",
            "dev",
            { "digitalocean:spacesSecretKey": undefined },
            `digitalocean:spacesSecretKey: undefined is not valid; ${SPACES_CREDENTIALS}`,
        ],
        [
            "a bucket to create from an existing cluster without a DigitalOcean token",
            "local",
            {
                "stateful-flask:backupMode": "spaces",
                "stateful-flask:backupBucket": "team-pg-backups",
                "stateful-flask:backupRegion": "fra1",
                "digitalocean:token": undefined,
            },
            "digitalocean:token: undefined is not valid; backupMode spaces needs a DigitalOcean API token: pulumi config set --secret digitalocean:token <token>, or DIGITALOCEAN_TOKEN in the environment",
        ],
    ];
    // Credentials in the environment would satisfy the checks these cases exercise.
    const ENV = ["SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"];
    let saved: Record<string, string | undefined>;
    before(() => {
        saved = Object.fromEntries(ENV.map((name) => [name, process.env[name]]));
        for (const name of ENV) delete process.env[name];
    });
    after(() => {
        for (const name of ENV) {
            if (saved[name] !== undefined) {
                process.env[name] = saved[name];
            }
        }
    });

    for (const [what, stack, overrides, message] of cases) {
        it(`refuses ${what}`, async () => {
            await assert.rejects(evaluate(stack, overrides), (err: any) => {
                const registered: ProgramResource[] = err.registered;
                assert.ok(err instanceof ConfigError, `${err?.name}: ${err?.message}`);
                assert.strictEqual(err.message, message);
                assert.deepStrictEqual(others(registered), []);
                return true;
            });
        });
    }
});

describe("validateCronSchedule and validateTimestamp", () => {
    it("accept numbers, *, ranges, lists and steps in every field", () => {
        for (const schedule of [
            "0 3 * * *",
            "*/15 * * * *",
            "0 0-23/6 * * *",
            "30 2 1,15 * *",
            "0 4 * 1-12/3 0",
            "59 23 31 12 7",
            "0 3 1,15 * 0",
            "0 3 31 1-12 *",
            "0 3 29 2,3 *",
            "0 3 1-31/2 * 1",
            "0 3 * * 0-6",
            "*/15 1-5/2 1,15 * 0,7",
        ]) {
            assert.strictEqual(validateCronSchedule("backupSchedule", schedule), schedule);
        }
    });

    it("accept ISO 8601 times with Z or an offset, with or without seconds and fractions", () => {
        for (const time of [
            "2026-11-24T14:01:00Z",
            "2026-11-24T14:01Z",
            "2026-11-24T15:01:00+01:00",
            "2026-11-24T09:01:00.250-05:00",
            "2028-02-29T00:00:00Z",
        ]) {
            assert.strictEqual(validateTimestamp("restoreTargetTime", time), time);
        }
        assert.throws(() => validateTimestamp("restoreTargetTime", "2027-02-29T00:00:00Z"), ConfigError);
        assert.throws(() => validateTimestamp("restoreTargetTime", "2026-11-24T14:01:00+1:00"), ConfigError);
    });
});
