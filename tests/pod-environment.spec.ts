/**
 * The program and the Postgres pod agree on every setting. The environment the program puts on the StatefulSet
 * (evaluated under mocks, for the committed stacks and edge configurations) is fed to the pod's own settings
 * parser through its command line (`pod.py config`, `pod.py env`), which must accept it; and each value the pod
 * refuses is refused by the program first, naming the stack key, before any resource is registered.
 */
import * as assert from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { validateMaxSlotWalKeepSize } from "../components/postgres";
import { tlsMaterial } from "../components/postgres-tls";
import { ConfigError, validateCronSchedule } from "../components/validate";
import { evaluate, MOCK_SPACES_KEY, type ProgramResource, ROOT, type StackName } from "./helpers/program";
import { all, one, T } from "./helpers/resources";

const PYTHON = "/usr/bin/python3";
const POD_PY = path.join(ROOT, "images", "postgres", "pod", "pod.py");
const POD_IP = "10.244.1.7";
const k = (key: string) => `stateful-flask:${key}`;

/** The pod's environment as the kubelet would give it to ordinal 0: literal values, the downward API, the Secrets' data. */
function podEnvironment(resources: ProgramResource[]): Record<string, string> {
    const sts = one(resources, T.statefulSet, "postgres");
    const ns: string = sts.inputs.metadata.namespace;
    const container = sts.inputs.spec.template.spec.containers.find((c: any) => c.name === "postgres");
    assert.strictEqual(container.envFrom, undefined, "the pod's settings come from env alone");
    const fields: Record<string, string> = {
        "metadata.name": `${sts.inputs.metadata.name}-0`,
        "metadata.namespace": ns,
        "status.podIP": POD_IP,
    };
    const env: Record<string, string> = {};
    for (const e of container.env as Array<{ name: string; value?: string; valueFrom?: any }>) {
        if (e.value !== undefined) {
            env[e.name] = e.value;
        } else if (e.valueFrom?.fieldRef) {
            env[e.name] = fields[e.valueFrom.fieldRef.fieldPath];
            assert.ok(env[e.name] !== undefined, `${e.name}: no value for field ${e.valueFrom.fieldRef.fieldPath}`);
        } else if (e.valueFrom?.secretKeyRef) {
            const ref = e.valueFrom.secretKeyRef;
            const secret = all(resources, T.secret).find(
                (s) => s.inputs.metadata.name === ref.name && s.inputs.metadata.namespace === ns,
            );
            assert.ok(secret, `${e.name}: the program registers no Secret ${ns}/${ref.name}`);
            const value = secret.inputs.stringData?.[ref.key];
            assert.strictEqual(typeof value, "string", `${e.name}: Secret ${ref.name} has no key ${ref.key}`);
            env[e.name] = value;
        } else {
            assert.fail(`${e.name}: a source the test does not resolve: ${JSON.stringify(e.valueFrom)}`);
        }
    }
    return env;
}

function pod(command: "config" | "env", env: Record<string, string>) {
    const r = spawnSync(PYTHON, [POD_PY, command], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `pod.py config` on the environment: exits 0 and prints Patroni's configuration. */
function patroniConfig(env: Record<string, string>): any {
    const r = pod("config", env);
    assert.strictEqual(r.status, 0, `pod.py config refused the program's environment:\n${r.stderr}`);
    return JSON.parse(r.stdout);
}

/** `pod.py env` on the environment: the settings the SQL scripts read, defaults applied. */
function sqlSettings(env: Record<string, string>): Record<string, string> {
    const r = pod("env", env);
    assert.strictEqual(r.status, 0, `pod.py env refused the program's environment:\n${r.stderr}`);
    return Object.fromEntries(
        r.stdout
            .trim()
            .split("\n")
            .map((line) => {
                const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
                assert.ok(m, `unexpected line from pod.py env: ${line}`);
                return [m[1], m[2].replace(/^'(.*)'$/, "$1")];
            }),
    );
}

// A private S3 store as backupMode existing reaches it (the local cluster's versitygw is one).
const S3_CA = tlsMaterial("a-seed-for-the-test-s3-store-ca", ["s3.backup-store.svc.cluster.local"]).caCert;
const EXISTING_STORE = {
    [k("backupMode")]: "existing",
    [k("backupBucket")]: "backups",
    [k("backupRegion")]: "us-east-1",
    [k("backupEndpoint")]: "s3.backup-store.svc.cluster.local",
    [k("backupUriStyle")]: "path",
    [k("backupCaCertificate")]: S3_CA,
    [k("backupAccessKeyId")]: "LOCALKEY",
    [k("backupSecretAccessKey")]: "local-secret",
};

describe("the program's Postgres environment is what the pod accepts (pod.py config and env)", () => {
    const cases: Array<{
        what: string;
        stack: StackName;
        overrides: Record<string, string>;
        check: (c: any, env: Record<string, string>) => void;
    }> = [
        {
            what: "the dev stack as committed (backups to Spaces, TLS, one member)",
            stack: "dev",
            overrides: {},
            check: (c) => {
                assert.strictEqual(c.name, "postgres-0");
                assert.strictEqual(c.kubernetes.namespace, "postgres");
                assert.strictEqual(c.postgresql.connect_address, `${POD_IP}:5432`);
                assert.strictEqual(c.bootstrap.dcs.synchronous_mode, true);
                assert.strictEqual(c.postgresql.parameters.ssl, "on");
                assert.strictEqual(c.postgresql.parameters.archive_timeout, 60);
                assert.match(
                    c.postgresql.parameters.archive_command,
                    / --config=\/var\/run\/postgresql\/pgbackrest-postgres-0\.conf --stanza=postgres /,
                );
                assert.strictEqual(c.bootstrap.method, undefined);
            },
        },
        {
            what: "the local stack as committed (an existing cluster, no backups)",
            stack: "local",
            overrides: {},
            check: (c) => {
                assert.strictEqual(c.postgresql.parameters.archive_mode, undefined);
                assert.strictEqual(c.postgresql.recovery_conf, undefined);
                assert.deepStrictEqual(
                    c.postgresql.pg_hba.filter((l: string) => l.includes("replication")).length > 0,
                    true,
                );
            },
        },
        {
            what: "nine members, strict synchronous mode, no TLS, other names, the widest schedule and limits",
            stack: "dev",
            overrides: {
                [k("postgresReplicas")]: "9",
                [k("apiReplicas")]: "9",
                [k("postgresSynchronousMode")]: "strict",
                [k("postgresTls")]: "false",
                [k("postgresUser")]: "tasks-owner",
                [k("postgresDatabase")]: "tasks",
                [k("replicationCidr")]: "10.0.0.0/8",
                [k("backupSchedule")]: "*/15 1-5/2 1,15 * 0,7",
                [k("backupRetentionFull")]: "100",
                [k("archiveTimeout")]: "10",
            },
            check: (c, env) => {
                assert.deepStrictEqual(
                    [c.bootstrap.dcs.synchronous_mode, c.bootstrap.dcs.synchronous_mode_strict],
                    [true, true],
                );
                assert.strictEqual(c.postgresql.parameters.ssl, undefined);
                assert.strictEqual(c.postgresql.parameters.archive_timeout, 10);
                assert.ok(
                    c.postgresql.pg_hba.some((l: string) => l.includes("10.0.0.0/8")),
                    c.postgresql.pg_hba.join("\n"),
                );
                assert.strictEqual(env.BACKUP_SCHEDULE, "*/15 1-5/2 1,15 * 0,7");
                assert.strictEqual(env.BACKUP_RETENTION_FULL, "100");
            },
        },
        {
            what: "asynchronous replication and the longest archive timeout",
            stack: "dev",
            overrides: {
                [k("postgresSynchronousMode")]: "off",
                [k("archiveTimeout")]: "3600",
                [k("backupRetentionFull")]: "1",
            },
            check: (c) => {
                assert.deepStrictEqual(
                    [c.bootstrap.dcs.synchronous_mode, c.bootstrap.dcs.synchronous_mode_strict],
                    [false, false],
                );
                assert.strictEqual(c.postgresql.parameters.archive_timeout, 3600);
            },
        },
        {
            what: "an existing S3 store (path style, a private CA) and a restore to a point in time",
            stack: "local",
            overrides: {
                ...EXISTING_STORE,
                [k("restoreFrom")]: "/stateful-flask/old",
                [k("restoreTargetTime")]: "2026-11-24T15:01:00+01:00",
            },
            check: (c, env) => {
                assert.strictEqual(env.BACKUP_S3_URI_STYLE, "path");
                assert.strictEqual(env.BACKUP_S3_CA_FILE, "/etc/postgres-backup-ca/ca.crt");
                assert.strictEqual(env.BACKUP_S3_KEY, "LOCALKEY");
                assert.strictEqual(c.bootstrap.method, "pgbackrest");
                assert.strictEqual(
                    c.bootstrap.pgbackrest.recovery_conf.recovery_target_time,
                    "2026-11-24 15:01:00+01:00",
                );
                assert.match(
                    c.bootstrap.pgbackrest.recovery_conf.restore_command,
                    /--repo1-path=\/stateful-flask\/old archive-get/,
                );
            },
        },
    ];
    for (const { what, stack, overrides, check } of cases) {
        it(`accepts ${what}`, async () => {
            const { resources } = await evaluate(stack, overrides);
            const env = podEnvironment(resources);
            check(patroniConfig(env), env);
            // The roles and database the SQL scripts create are the program's, not the pod's defaults.
            const sql = sqlSettings(env);
            const api = one(resources, T.secret, "stateful-flask-database").inputs.stringData;
            assert.deepStrictEqual(
                [sql.APP_USER, sql.APP_DATABASE, sql.REPLICATION_USER],
                [api.POSTGRES_USER, api.POSTGRES_DB, "replicator"],
            );
        });
    }

    it("gives the spaces stack's pod the key the program made for its bucket", async () => {
        const env = podEnvironment((await evaluate("dev")).resources);
        assert.deepStrictEqual(
            [env.BACKUP_S3_KEY, env.BACKUP_S3_KEY_SECRET],
            [MOCK_SPACES_KEY.accessKey, MOCK_SPACES_KEY.secretKey],
        );
        assert.deepStrictEqual(
            [env.BACKUP_S3_BUCKET, env.BACKUP_S3_ENDPOINT, env.BACKUP_PATH],
            ["stateful-flask-dev-pgbackrest", "fra1.digitaloceanspaces.com", "/stateful-flask/dev"],
        );
    });
});

describe("a value the pod refuses is refused by the program first", () => {
    let base: Record<string, string>;
    before(async () => {
        base = podEnvironment((await evaluate("dev")).resources);
    });

    // [stack key, value, the env variable the program would render it into, that variable's value]
    const refused: Array<[string, string, string, string, StackName?, Record<string, string>?]> = [
        ["postgresUser", "replicator", "APP_USER", "replicator"],
        ["postgresSynchronousMode", "sometimes", "SYNCHRONOUS_MODE", "sometimes"],
        ["replicationCidr", "10.244.0.0", "POD_CIDR", "10.244.0.0"],
        ["replicationCidr", "pods", "POD_CIDR", "pods"],
        ["backupSchedule", "0 3 * *", "BACKUP_SCHEDULE", "0 3 * *"],
        ["backupSchedule", "0 3 * * MON", "BACKUP_SCHEDULE", "0 3 * * MON"],
        ["backupSchedule", "0 3 31 2 *", "BACKUP_SCHEDULE", "0 3 31 2 *"],
        ["backupSchedule", "0 3 1 * 0-6", "BACKUP_SCHEDULE", "0 3 1 * 0-6"],
        ["backupRetentionFull", "0", "BACKUP_RETENTION_FULL", "0"],
        ["backupRetentionFull", "101", "BACKUP_RETENTION_FULL", "101"],
        ["archiveTimeout", "9", "ARCHIVE_TIMEOUT", "9"],
        ["archiveTimeout", "3601", "ARCHIVE_TIMEOUT", "3601"],
        ["backupPath", "stateful-flask/dev", "BACKUP_PATH", "stateful-flask/dev"],
        ["restoreFrom", "/stateful-flask/dev", "RESTORE_FROM_PATH", "/stateful-flask/dev"],
        ["restoreFrom", "old/dev", "RESTORE_FROM_PATH", "old/dev"],
        [
            "restoreTargetTime",
            "2026-11-24 14:01",
            "RESTORE_TARGET_TIME",
            "2026-11-24 14:01",
            "dev",
            { [k("restoreFrom")]: "/stateful-flask/old" },
        ],
        ["backupUriStyle", "virtual", "BACKUP_S3_URI_STYLE", "virtual", "local", EXISTING_STORE],
    ];
    for (const [key, value, variable, rendered, stack = "dev", extra = {}] of refused) {
        it(`${key} ${JSON.stringify(value)} (the pod refuses ${variable}=${JSON.stringify(rendered)})`, async () => {
            const restore: Record<string, string> =
                extra[k("restoreFrom")] !== undefined ? { RESTORE_FROM_PATH: extra[k("restoreFrom")] } : {};
            const r = pod("config", { ...base, ...restore, [variable]: rendered });
            assert.strictEqual(r.status, 1, `the pod accepted ${variable}=${rendered}`);
            assert.match(r.stderr, new RegExp(`FATAL: .*${variable}`));
            await assert.rejects(evaluate(stack, { ...extra, [k(key)]: value }), (err: any) => {
                const registered: ProgramResource[] = err.registered;
                assert.ok(err instanceof ConfigError, `${err}`);
                assert.strictEqual(err.key, key);
                // Integers are named as numbers, everything else as the string given.
                const shown = /^-?\d+$/.test(value) ? value : JSON.stringify(value);
                assert.ok(err.message.startsWith(`${key}: ${shown} is not valid; `), err.message);
                assert.deepStrictEqual(
                    registered.filter((x) => x.type !== "pulumi:pulumi:Stack"),
                    [],
                );
                return true;
            });
        });
    }

    it("backupSchedule: the program (cron-parser) and the pod (croniter) accept the same schedules and refuse the rest in the same words", () => {
        const accepted = [
            "0 3 * * *",
            "0 3 1,15 * 0",
            "*/15 1-5/2 1,15 * 0,7",
            "0 3 31 1-12 *",
            "0 3 31 1,2 *",
            "0 3 29 2,3 *",
            "0 3 28 2 *",
            "0 3 1-31/2 * 1",
            "0 3 * * 0-6",
            "0 3 1-31 * *",
            "0,0 3 1,1 2,2 *",
            "59 23 31 12 7",
            "0 0 1 1 *",
        ];
        const refused = [
            "0 3 31 2 *",
            "0 3 30 2 *",
            "0 3 29 2 *",
            "0 3 31 4,6,9,11 *",
            "0 3 31 2 1",
            "0 3 30-31 2 *",
            "0 3 1-31 * 1",
            "0 3 1 * 0-6",
            "0 3 1 * 1-7",
            "0 3 1 * 0,1,2,3,4,5,6",
            "0 3 */2 * 1",
            "0 3 1 * */1",
            "5/10 * * * *",
            "*/60 * * * *",
            "0 24 * * *",
            "0 3 * * 5-1",
            "0 3 * * 8",
            "@daily",
            "0 3 * * MON",
            "0 3 * *",
            "0  3 * * * *",
        ];
        for (const schedule of [...accepted, ...refused]) {
            const r = pod("config", { ...base, BACKUP_SCHEDULE: schedule });
            let reason: string | undefined;
            try {
                validateCronSchedule("backupSchedule", schedule);
            } catch (err) {
                assert.ok(err instanceof ConfigError, `${err}`);
                reason = err.message.replace(`backupSchedule: ${JSON.stringify(schedule)} is not valid; `, "");
            }
            assert.strictEqual(
                reason === undefined,
                accepted.includes(schedule),
                `${schedule}: the program ${reason === undefined ? "accepts" : `refuses it: ${reason}`}`,
            );
            if (reason === undefined) {
                assert.strictEqual(
                    r.status,
                    0,
                    `${schedule}: the program accepts it, the pod refuses it:\n${r.stderr}`,
                );
            } else {
                assert.strictEqual(r.status, 1, `${schedule}: the program refuses it, the pod accepts it`);
                assert.ok(
                    r.stderr.includes(`FATAL: BACKUP_SCHEDULE='${schedule}' is not valid; ${reason}\n`),
                    `${schedule}: expected "${reason}" in\n${r.stderr}`,
                );
            }
        }
    });

    it("maxSlotWalKeepSize (a component argument): the program and the pod accept exactly the same sizes", () => {
        for (const size of ["1GB", "512MB", "2TB", "-1", "1G", "0GB", "1.5GB", "01GB", "-2", "1 GB"]) {
            const podAccepts = pod("config", { ...base, MAX_SLOT_WAL_KEEP_SIZE: size }).status === 0;
            let programAccepts = true;
            try {
                validateMaxSlotWalKeepSize(size);
            } catch (err) {
                assert.ok(err instanceof ConfigError);
                assert.strictEqual(
                    err.message,
                    `maxSlotWalKeepSize: ${JSON.stringify(size)} is not valid; expected a size such as 512MB or 1GB, or -1 for no limit (a stopped replica's slot may then fill the leader's disk)`,
                );
                programAccepts = false;
            }
            assert.strictEqual(
                programAccepts,
                podAccepts,
                `${size}: the program ${programAccepts ? "accepts" : "refuses"} it, the pod ${podAccepts ? "accepts" : "refuses"} it`,
            );
            assert.strictEqual(podAccepts, ["1GB", "512MB", "2TB", "-1"].includes(size), size);
        }
    });
});
