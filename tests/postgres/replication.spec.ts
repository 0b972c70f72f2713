/**
 * scripts/postgres/entrypoint.sh on real PostgreSQL 15: a primary and a streaming standby started exactly as
 * the StatefulSet starts them (same script, the contract's environment), on loopback ports.
 */
import { match, ok, strictEqual, throws } from "assert";
import * as fs from "fs";
import * as path from "path";
import {
    APP_DB,
    APP_PASSWORD,
    APP_USER,
    assertPostgresInstalled,
    freePort,
    IDENTITY,
    makeOwnedDir,
    makeRoot,
    Pod,
    psql,
    REPLICATION_PASSWORD,
    runAsServerUser,
    stopAll,
    waitFor,
} from "./cluster";

const count = (pod: Pod) => Number(pod.sql("SELECT count(*) FROM items"));
const inRecovery = (pod: Pod) => pod.sql("SELECT pg_is_in_recovery()");
const insert = (pod: Pod, n: number) => pod.sql(`INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, ${n}) g`);
const waitForCount = (pod: Pod, n: number) => waitFor(`${pod.name} to have ${n} rows`, () => (count(pod) === n ? n : undefined));

describe("postgres entrypoint: primary with a streaming standby", function () {
    let root: string;
    let primary: Pod;
    let standby: Pod;
    let standbyDirInode: number;

    before(async function () {
        assertPostgresInstalled();
        root = makeRoot();
        const [p0, p1] = [await freePort(), await freePort()];
        primary = new Pod(root, "postgres-0", p0, { POSTGRES_PASSWORD: APP_PASSWORD, REPLICATION_PASSWORD, PRIMARY_HOST: "127.0.0.1", PRIMARY_PORT: String(p0) });
        standby = new Pod(root, "postgres-1", p1, { POSTGRES_PASSWORD: APP_PASSWORD, REPLICATION_PASSWORD, PRIMARY_HOST: "127.0.0.1", PRIMARY_PORT: String(p0) });
        // A fresh ext4 volume holds lost+found: PGDATA is a subdirectory so initdb never sees it.
        makeOwnedDir(path.join(primary.volume, "lost+found"));
    });

    after(async function () {
        await stopAll();
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    it("initialises the primary on an empty volume and execs postgres", async function () {
        await primary.start();
        strictEqual(inRecovery(primary), "f");
        // exec: the entrypoint's process is the postmaster, so the pod's stop signal reaches postgres.
        strictEqual(fs.readFileSync(path.join(primary.pgdata, "postmaster.pid"), "utf8").split("\n")[0], String(primary.pid));
        strictEqual(fs.statSync(primary.pgdata).mode & 0o777, 0o700);
        strictEqual(primary.sql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${APP_DB}'`), APP_USER);
        strictEqual(primary.sql("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'replicator'"), "t|f");
        strictEqual(primary.sql("SHOW max_slot_wal_keep_size"), "2GB");
        const hba = fs.readFileSync(path.join(primary.pgdata, "pg_hba.conf"), "utf8");
        match(hba, /^host\s+replication\s+"replicator"\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
        match(hba, /^host\s+all\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
        ok(!primary.lastLog.includes(REPLICATION_PASSWORD) && !primary.lastLog.includes(APP_PASSWORD), "a password was logged");
        primary.sql("CREATE TABLE items (id bigserial PRIMARY KEY, note text NOT NULL)");
    });

    it("rejects a wrong password and the replication role on normal databases", function () {
        throws(() => psql(primary.port, "SELECT 1", { password: "wrong" }), /password authentication failed/);
        throws(() => psql(primary.port, "SELECT 1", { user: "replicator", password: REPLICATION_PASSWORD }), /pg_hba.conf rejects connection/);
    });

    it("clones a standby with pg_basebackup and streams to it through its slot", async function () {
        await standby.start();
        match(standby.lastLog, /cloning 127\.0\.0\.1:\d+/);
        strictEqual(inRecovery(standby), "t");
        standbyDirInode = standby.inode();
        const sender = await waitFor("the standby to stream", () => primary.sql("SELECT application_name, state FROM pg_stat_replication") || undefined);
        strictEqual(sender, "postgres-1|streaming");
        strictEqual(primary.sql("SELECT slot_type, active FROM pg_replication_slots WHERE slot_name = 'postgres_1'"), "physical|t");
        ok(!fs.readFileSync(path.join(standby.pgdata, "postgresql.auto.conf"), "utf8").includes("password"), "password written to postgresql.auto.conf");
    });

    it("replicates rows written on the primary; the standby refuses writes", async function () {
        insert(primary, 100);
        strictEqual(count(primary), 100);
        strictEqual(await waitForCount(standby, 100), 100);
        throws(() => insert(standby, 1), /read-only transaction/);
    });

    it("keeps the rows when the primary (SIGTERM) and the standby (SIGINT) restart", async function () {
        strictEqual(await standby.stop("SIGINT"), 0);
        strictEqual(await primary.stop("SIGTERM"), 0);
        match(primary.lastLog, /received smart shutdown request/);
        await primary.start();
        await standby.start();
        ok(!/initdb|cloning/.test(primary.lastLog + standby.lastLog), "a restart re-initialised or re-cloned");
        strictEqual(count(primary), 100);
        strictEqual(await waitForCount(standby, 100), 100);
        strictEqual(inRecovery(primary), "f");
        strictEqual(inRecovery(standby), "t");
    });

    it("re-creates its slot on the primary when it is missing (as after a failover)", async function () {
        await standby.stop();
        primary.sql("SELECT pg_drop_replication_slot('postgres_1')");
        await standby.start();
        match(standby.lastLog, /replication slot 'postgres_1' missing on the primary; creating it/);
        strictEqual(await waitFor("the slot to be active", () => (primary.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'postgres_1'") === "t" ? "t" : undefined)), "t");
        strictEqual(standby.inode(), standbyDirInode);
    });

    it("a stopped standby catches up from its own volume without re-cloning", async function () {
        await standby.stop();
        insert(primary, 50);
        // Force WAL segments past the standby's position: only its slot keeps them on the primary.
        primary.sql("SELECT pg_switch_wal()");
        insert(primary, 25);
        primary.sql("CHECKPOINT");
        strictEqual(primary.sql("SELECT active, wal_status FROM pg_replication_slots WHERE slot_name = 'postgres_1'"), "f|reserved");
        fs.writeFileSync(path.join(standby.volume, "marker"), "survives");
        await standby.start();
        ok(!standby.lastLog.includes("cloning"), "the standby re-cloned");
        strictEqual(standby.inode(), standbyDirInode);
        strictEqual(await waitForCount(standby, 175), 175);
        strictEqual(inRecovery(standby), "t");
    });

    it("promotes the standby, which then takes writes on a new timeline", async function () {
        strictEqual(standby.sql("SELECT pg_promote(true, 30)"), "t");
        strictEqual(inRecovery(standby), "f");
        insert(standby, 1);
        strictEqual(count(standby), 176);
        strictEqual(standby.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), "00000002");
        strictEqual(count(primary), 175);
    });

    it("refuses to restart the promoted pod as a second primary unless PRIMARY_ORDINAL names it", async function () {
        await primary.stop();
        strictEqual(await standby.stop(), 0);
        const refused = await standby.runToExit();
        strictEqual(refused.code, 1);
        match(refused.output, /FATAL: .* holds a primary \(no standby.signal\) but postgres-1 is not the designated primary \(ordinal 0\); refusing to start a second primary/);
        // The runbook's last step: PRIMARY_ORDINAL=1 records the failover and the pod starts as the primary.
        await standby.start(60000, { PRIMARY_ORDINAL: "1" });
        strictEqual(inRecovery(standby), "f");
        strictEqual(count(standby), 176);
    });
});

describe("postgres entrypoint: a data directory initialised by the official image", function () {
    let root: string;
    let pod: Pod;

    before(async function () {
        assertPostgresInstalled();
        root = makeRoot();
        pod = new Pod(root, "postgres-0", await freePort(), { POSTGRES_PASSWORD: APP_PASSWORD, REPLICATION_PASSWORD, PRIMARY_HOST: "127.0.0.1" });
        // What docker-entrypoint.sh does: initdb with POSTGRES_USER as superuser, trust locally, scram over TCP.
        const pwfile = path.join(pod.volume, "pw");
        fs.writeFileSync(pwfile, APP_PASSWORD);
        if (IDENTITY) fs.chownSync(pwfile, IDENTITY.uid, IDENTITY.gid);
        const init = runAsServerUser("initdb", ["-D", pod.pgdata, `--username=${APP_USER}`, `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256"]);
        strictEqual(init.status, 0, init.stderr);
        fs.rmSync(pwfile);
        fs.appendFileSync(path.join(pod.pgdata, "postgresql.conf"), "listen_addresses = '*'\n");
        fs.appendFileSync(path.join(pod.pgdata, "pg_hba.conf"), "host all all all scram-sha-256\n");
        const pgctl = (...args: string[]) => {
            const r = runAsServerUser("pg_ctl", ["-D", pod.pgdata, "-w", "-o", `-c port=${pod.port} -c listen_addresses=127.0.0.1`, ...args]);
            strictEqual(r.status, 0, r.stderr + r.stdout);
        };
        pgctl("start", "-l", path.join(pod.volume, "legacy.log"));
        try {
            psql(pod.port, `CREATE DATABASE "${APP_DB}"`, { db: "postgres" });
            psql(pod.port, "CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 7)");
        } finally {
            pgctl("-m", "fast", "stop");
        }
    });

    after(async function () {
        await stopAll();
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    it("starts it as-is and creates the missing replication role", async function () {
        const before = { dir: pod.inode(), control: pod.inode("global/pg_control") };
        await pod.start();
        ok(!pod.lastLog.includes("initdb"), "the existing data directory was re-initialised");
        strictEqual(pod.inode(), before.dir);
        strictEqual(pod.inode("global/pg_control"), before.control);
        strictEqual(count(pod), 7);
        strictEqual(pod.sql("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'"), "t");
        // The new role authenticates over the replication protocol with REPLICATION_PASSWORD.
        const identify = psql(pod.port, "IDENTIFY_SYSTEM", { user: "replicator", password: REPLICATION_PASSWORD, db: "replication=true" });
        const controlId = runAsServerUser("pg_controldata", [pod.pgdata]).stdout.match(/Database system identifier:\s+(\d+)/)![1];
        strictEqual(identify.split("|")[0], controlId);
    });

    it("a second start is idempotent", async function () {
        await pod.stop();
        await pod.start();
        strictEqual(pod.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'"), "1");
        strictEqual(count(pod), 7);
    });
});

describe("postgres entrypoint: bad environment fails with a clear message", function () {
    let root: string;
    let pod: Pod;

    before(async function () {
        assertPostgresInstalled();
        root = makeRoot();
        pod = new Pod(root, "postgres-1", await freePort(), { REPLICATION_PASSWORD, PRIMARY_HOST: "127.0.0.1", POSTGRES_PASSWORD: APP_PASSWORD });
    });

    after(function () {
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    const cases: [string, Record<string, string | undefined>, RegExp][] = [
        ["POD_NAME without an ordinal", { POD_NAME: "postgres" }, /FATAL: cannot parse an ordinal from POD_NAME='postgres'; expected <statefulset>-<ordinal>, e.g. postgres-0/],
        ["POD_NAME with a non-numeric ordinal", { POD_NAME: "postgres-x" }, /FATAL: cannot parse an ordinal from POD_NAME='postgres-x'/],
        ["a standby without REPLICATION_PASSWORD", { REPLICATION_PASSWORD: undefined }, /FATAL: REPLICATION_PASSWORD is required on a standby \(postgres-1, ordinal 1; the primary is ordinal 0\)/],
        ["a standby without PRIMARY_HOST", { PRIMARY_HOST: undefined }, /FATAL: PRIMARY_HOST is required on a standby \(postgres-1\)/],
        ["a missing PGDATA", { PGDATA: undefined }, /FATAL: PGDATA is required; expected a subdirectory of the volume/],
        ["a new primary without POSTGRES_PASSWORD", { POD_NAME: "postgres-0", POSTGRES_PASSWORD: undefined }, /FATAL: POSTGRES_PASSWORD is required to initialise a new database/],
        ["an invalid PGPORT", { PGPORT: "99999" }, /FATAL: PGPORT='99999' is not valid; expected a TCP port from 1 to 65535/],
        ["an invalid REPLICATION_CIDR", { REPLICATION_CIDR: "10.0.0.0/8 trust" }, /FATAL: REPLICATION_CIDR contains 'trust'; expected CIDRs/],
        ["an invalid MAX_SLOT_WAL_KEEP_SIZE", { MAX_SLOT_WAL_KEEP_SIZE: "lots" }, /FATAL: MAX_SLOT_WAL_KEEP_SIZE='lots' is not valid; expected a size such as 512MB or 2GB/],
        ["REPLICATION_USER equal to POSTGRES_USER", { REPLICATION_USER: APP_USER }, /FATAL: REPLICATION_USER and POSTGRES_USER are both 'stateful-flask-user'/],
    ];
    for (const [what, overrides, message] of cases) {
        it(`rejects ${what}`, async function () {
            const r = await pod.runToExit(overrides);
            strictEqual(r.code, 1, r.output);
            match(r.output, message);
            ok(!fs.existsSync(pod.pgdata), "PGDATA was created despite the bad environment");
        });
    }

    it("refuses to run as root", async function () {
        if (process.getuid?.() !== 0) this.skip(); // only meaningful when the suite runs as root (CI does)
        const r = await pod.runToExit({}, true);
        strictEqual(r.code, 1);
        match(r.output, /FATAL: refusing to run as root; run as the postgres user \(uid 999 in the image\)/);
    });

    it("refuses to initialise over a cluster that sits at the volume root (the image's default PGDATA)", async function () {
        const root = path.dirname(pod.pgdata);
        fs.writeFileSync(path.join(root, "PG_VERSION"), "15\n");
        try {
            const r = await pod.runToExit({ POD_NAME: "postgres-0" });
            strictEqual(r.code, 1, r.output);
            match(r.output, /holds a PostgreSQL cluster at the volume root, not in .*pgdata; refusing to initialise a new, empty one next to it/);
            ok(!fs.existsSync(pod.pgdata), "a new PGDATA was created next to the existing cluster");
        } finally {
            fs.rmSync(path.join(root, "PG_VERSION"));
        }
    });

    it("refuses a non-empty PGDATA that holds no cluster", async function () {
        makeOwnedDir(pod.pgdata);
        fs.writeFileSync(path.join(pod.pgdata, "precious.txt"), "user data");
        const r = await pod.runToExit({ POD_NAME: "postgres-0" });
        strictEqual(r.code, 1);
        match(r.output, /is not empty but holds no PostgreSQL cluster \(no PG_VERSION\); refusing to touch it/);
        strictEqual(fs.readFileSync(path.join(pod.pgdata, "precious.txt"), "utf8"), "user data");
    });
});
