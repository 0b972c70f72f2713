/**
 * Volumes Patroni did not create are taken over with their data: a primary and a standby of the previous
 * entrypoint (tests/fixtures/legacy-entrypoint, the project's entrypoint before Patroni), replaced in the order a
 * StatefulSet rolling update replaces them (highest ordinal first, while the old primary still takes writes), and
 * a cluster the official image initialised at the volume root, moved into PGDATA even after an interrupted move.
 */
import * as assert from "node:assert";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    APP_DB,
    APP_USER,
    Load,
    PASSWORDS,
    PG_BIN,
    type PatroniCluster,
    idsOn,
    installPodFiles,
    missingAcks,
    postgresIdentity,
    psql,
    sleep,
    tableDigest,
    waitFor,
    withControlPlane,
} from "./harness";

const LEGACY = path.join(__dirname, "fixtures", "legacy-entrypoint");

/** The previous entrypoint on a member's volume and port: plain PostgreSQL, a fixed primary, no Patroni. */
class LegacyPod {
    private child?: ChildProcess;
    private exit?: Promise<void>;
    constructor(
        private readonly cluster: PatroniCluster,
        private readonly ordinal: number,
        private readonly scripts: string,
    ) {}

    start(): void {
        const m = this.cluster.members[this.ordinal];
        const primary = this.cluster.members[0];
        const pg = postgresIdentity();
        const out = fs.openSync(path.join(this.cluster.root, `legacy-${this.ordinal}.log`), "a");
        this.child = spawn(path.join(this.scripts, "entrypoint.sh"), [], {
            env: {
                PATH: `${PG_BIN}:/usr/bin:/bin`,
                LANG: "C.UTF-8",
                POD_NAME: m.name,
                PGDATA: m.pgdata,
                PGPORT: String(m.pgPort),
                POSTGRES_USER: APP_USER,
                POSTGRES_DB: APP_DB,
                POSTGRES_PASSWORD: PASSWORDS.app,
                REPLICATION_USER: "replicator",
                REPLICATION_PASSWORD: PASSWORDS.replication,
                PRIMARY_HOST: "127.0.0.1",
                PRIMARY_PORT: String(primary.pgPort),
                REPLICATION_CIDR: "127.0.0.1/32",
                CLIENT_CIDR: "127.0.0.1/32",
                LISTEN_ADDRESSES: "127.0.0.1",
            },
            uid: pg.uid,
            gid: pg.gid,
            cwd: m.runDir,
            stdio: ["ignore", out, out],
        });
        fs.closeSync(out);
        const child = this.child;
        this.exit = new Promise((resolve) => child.once("exit", () => resolve()));
    }

    /** What the previous StatefulSet's preStop did: a fast shutdown (SIGINT to the postmaster). */
    async stop(): Promise<void> {
        this.child?.kill("SIGINT");
        await this.exit;
    }
}

describe("Patroni takes over volumes it did not create, with their data", function () {
    this.timeout(300000);
    const env = withControlPlane();

    it("a primary and a standby of the previous entrypoint: the standby, replaced first, waits without promoting while the old primary takes writes; then the primary leads and the standby follows", async () => {
        // Without TLS: the writer keeps one connection string across the previous entrypoint (no TLS) and Patroni.
        const cluster = await env.cluster("adopt-entrypoint", 2, {}, { tls: false });
        const scripts = installPodFiles(path.join(cluster.root, "legacy"), LEGACY);
        const [m0, m1] = cluster.members;
        const legacy0 = new LegacyPod(cluster, 0, scripts);
        const legacy1 = new LegacyPod(cluster, 1, scripts);
        legacy0.start();
        await waitFor(
            "the legacy primary",
            60000,
            () => psql(m0.pgPort, "SELECT 1", { user: APP_USER }) === "1" || undefined,
        );
        legacy1.start();
        await waitFor(
            "the legacy standby streaming",
            120000,
            () =>
                psql(m0.pgPort, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", {
                    user: APP_USER,
                }) === "1" || undefined,
        );
        const sysid = psql(m0.pgPort, "SELECT system_identifier FROM pg_control_system()", { user: APP_USER });

        const load = new Load(cluster);
        const { writer, sampler } = load;
        await writer.waitForAcks(50);

        // The rolling update replaces the highest ordinal first: the standby gets Patroni, the primary does not yet.
        await legacy1.stop();
        m1.start();
        await waitFor(
            "the adopted standby's nofailover notice",
            30000,
            () => /nofailover until a Patroni leader exists/.test(m1.log()) || undefined,
        );
        await waitFor(
            "the adopted standby running as a replica",
            60000,
            async () => (await m1.state())?.state === "running" || undefined,
        );
        await sleep(10000); // more than ttl: time enough to have won an election, had it been allowed to
        const leaderless = await m1.rest("/cluster");
        assert.deepStrictEqual(
            leaderless.body.members.filter((m: any) => m.role === "leader"),
            [],
            "no Patroni leader while the old primary runs",
        );
        assert.strictEqual(psql(m1.pgPort, "SELECT pg_is_in_recovery()", { user: APP_USER }), "t");
        await writer.waitForAcks(50); // the old primary still takes writes

        // Then the primary.
        await legacy0.stop();
        m0.start();
        const { leader } = await cluster.healthy(1, 120000);
        assert.strictEqual(leader.name, "postgres-0");
        await waitFor(
            "nofailover lifted on the adopted standby",
            60000,
            () => /nofailover lifted/.test(m1.log()) || undefined,
        );
        await writer.waitForAcks(50);
        await load.stop();

        assert.deepStrictEqual(missingAcks(writer, idsOn(m0)), []);
        await waitFor(
            "the standby to have the leader's rows",
            60000,
            () => tableDigest(m1).md5 === tableDigest(m0).md5 || undefined,
        );
        assert.deepStrictEqual(sampler.splitBrain(), []);
        for (const m of cluster.members) {
            assert.strictEqual(
                m.sql("SELECT system_identifier FROM pg_control_system()"),
                sysid,
                `${m.name} keeps the cluster's identity`,
            );
            assert.ok(
                fs.existsSync(path.join(m.volume, ".patroni-managed")),
                `${m.name}'s volume is marked as Patroni's`,
            );
        }
        assert.strictEqual(m0.sql("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'postgres'"), "true");
        const me = await m1.state();
        assert.notStrictEqual(me.tags?.nofailover, true, `tags: ${JSON.stringify(me.tags)}`);
    });

    it("a cluster the official image initialised at the volume root is moved into PGDATA, also after an interrupted move, and led by Patroni", async () => {
        const cluster = await env.cluster("adopt-official", 1, {}, { tls: false });
        const m = cluster.members[0];
        const pg = postgresIdentity();
        const asPostgres = (bin: string, args: string[]) => {
            const r = spawnSync(path.join(PG_BIN, bin), args, {
                encoding: "utf8",
                uid: pg.uid,
                gid: pg.gid,
                cwd: "/",
                env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
            });
            assert.strictEqual(r.status, 0, `${bin} ${args.join(" ")}: ${r.stderr}`);
        };
        // What the official image's docker-entrypoint.sh does with PGDATA at the mount point.
        const pwfile = path.join(m.runDir, "pw");
        fs.writeFileSync(pwfile, `${PASSWORDS.app}\n`);
        fs.chownSync(pwfile, pg.uid, pg.gid);
        asPostgres("initdb", [
            "-D",
            m.volume,
            `--username=${APP_USER}`,
            `--pwfile=${pwfile}`,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ]);
        fs.appendFileSync(path.join(m.volume, "pg_hba.conf"), "host all all all scram-sha-256\n");
        // -l: the server must not inherit this process's pipes, or spawnSync would wait for it to exit.
        asPostgres("pg_ctl", [
            "-D",
            m.volume,
            "-w",
            "-l",
            path.join(m.runDir, "official.log"),
            "-o",
            `-p ${m.pgPort} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${m.runDir}`,
            "start",
        ]);
        psql(m.pgPort, `CREATE DATABASE "${APP_DB}"`, { user: APP_USER, db: "postgres" });
        psql(
            m.pgPort,
            "CREATE TABLE writes (id bigserial PRIMARY KEY, payload text NOT NULL); INSERT INTO writes (payload) SELECT md5(i::text) FROM generate_series(1, 500) i",
            { user: APP_USER },
        );
        const before = {
            count: 500,
            md5: psql(m.pgPort, "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM writes t", { user: APP_USER }),
        };
        asPostgres("pg_ctl", ["-D", m.volume, "-w", "-m", "fast", "stop"]);
        // A DigitalOcean volume's lost+found stays where it is; a move that was interrupted half-way resumes.
        fs.mkdirSync(path.join(m.volume, "lost+found"), { mode: 0o700 });
        const adopting = path.join(m.volume, "pgdata.adopting");
        fs.mkdirSync(adopting, { mode: 0o700 });
        fs.chownSync(adopting, pg.uid, pg.gid);
        for (const entry of ["base", "global", "PG_VERSION"])
            fs.renameSync(path.join(m.volume, entry), path.join(adopting, entry));

        m.start();
        const { leader } = await cluster.healthy(0, 120000);
        assert.strictEqual(leader.name, "postgres-0");
        assert.deepStrictEqual(tableDigest(m), before);
        assert.match(m.log(), /adopting the cluster at the volume root .*: moving it into .*pgdata/);
        assert.ok(fs.existsSync(path.join(m.pgdata, "PG_VERSION")));
        assert.ok(!fs.existsSync(path.join(m.volume, "PG_VERSION")));
        assert.ok(!fs.existsSync(adopting));
        assert.ok(fs.existsSync(path.join(m.volume, "lost+found")), "lost+found stays at the volume root");
        assert.strictEqual(m.sql("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'postgres'"), "true");
    });
});
