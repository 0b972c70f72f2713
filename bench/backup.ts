/**
 * Backup benchmark (not a test): a Patroni leader started by the image's entrypoint, archiving with pgBackRest to
 * versitygw over TLS on loopback (images/postgres/tests/harness.ts), a database of about 1 GB (pgbench scale 70),
 * and, in one run:
 *   - the WAL archive's lag under pgbench TPC-B load (how many finished segments wait for archive-push, and how
 *     long the oldest has waited, sampled every 500 ms);
 *   - a full backup: time, throughput, the size stored (lz4, encrypted);
 *   - a restore into a new cluster to the end of the archive, and one to a point in time before the load: from
 *     the start of the member to its server accepting writes (the archive check, pgbackrest restore, WAL replay,
 *     promotion).
 *
 *   npm run bench:backup [SCALE] [SECONDS]      (default scale 70, about 1 GB; 30 s of pgbench load, 4 clients)
 */
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import {
    APP_DB,
    APP_USER,
    ControlPlane,
    type Member,
    ObjectStore,
    PASSWORDS,
    PG_BIN,
    PatroniCluster,
    postgresIdentity,
    sleep,
} from "../images/postgres/tests/harness";
import { percentile, progressLog } from "./common";

const log = progressLog("bench:backup");

/** pgbackrest as the postgres user with the member's own configuration (what the pod's agent runs). */
function pgbackrest(m: Member, args: string[]): { seconds: number; output: string } {
    const pg = postgresIdentity();
    const started = Date.now();
    const r = spawnSync(
        "pgbackrest",
        [`--config=${path.join(m.runDir, `pgbackrest-${m.name}.conf`)}`, "--stanza=postgres", ...args],
        { encoding: "utf8", uid: pg.uid, gid: pg.gid, cwd: m.runDir, maxBuffer: 64 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`pgbackrest ${args.join(" ")}: ${r.stderr}${r.stdout}`);
    return { seconds: (Date.now() - started) / 1000, output: r.stdout };
}

function pgbench(m: Member, args: string[]): Promise<string> {
    const env = {
        ...process.env,
        PGPASSWORD: PASSWORDS.app,
        PGSSLMODE: "verify-full",
        PGSSLROOTCERT: m.cluster.ca ?? "",
    };
    const child = spawn(
        path.join(PG_BIN, "pgbench"),
        [...args, "-h", "127.0.0.1", "-p", String(m.pgPort), "-U", APP_USER, APP_DB],
        { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    return new Promise((resolve, reject) =>
        child.once("exit", (code) =>
            code === 0 ? resolve(out) : reject(new Error(`pgbench ${args.join(" ")}: ${out}`)),
        ),
    );
}

/** Starts a one-member cluster restored from `from` (to `target`) and times it until its server accepts writes. */
async function timedRestore(
    cp: ControlPlane,
    store: ObjectStore,
    ns: string,
    from: string,
    target?: string,
): Promise<{ seconds: number; rows: number }> {
    const copy = await PatroniCluster.create(
        cp,
        ns,
        1,
        store.env(`/bench/${ns}`, { RESTORE_FROM_PATH: from, ...(target ? { RESTORE_TARGET_TIME: target } : {}) }),
    );
    try {
        const started = Date.now();
        copy.members[0].start();
        const { leader } = await copy.healthy(0, 30 * 60 * 1000);
        const seconds = (Date.now() - started) / 1000;
        return { seconds, rows: Number(leader.sql("SELECT count(*) FROM pgbench_history", { user: APP_USER })) };
    } finally {
        await copy.destroy();
    }
}

async function main(): Promise<void> {
    const scale = Number(process.argv[2] ?? 70);
    const seconds = Number(process.argv[3] ?? 30);
    const store = new ObjectStore();
    await store.start();
    const cp = await ControlPlane.start();
    const src = await PatroniCluster.create(
        cp,
        "bench-backup",
        1,
        store.env("/bench/source", { BACKUP_SCHEDULE: "0 0 1 1 *" }),
    );
    try {
        log("starting the leader (the agent takes the first, empty, full backup)");
        src.members[0].start();
        const { leader } = await src.healthy(0, 120000);
        for (let i = 0; i < 120 && !/full backup done/.test(leader.log()); i++) await sleep(1000);

        log(`pgbench -i -s ${scale}`);
        await pgbench(leader, ["-i", "-q", "-s", String(scale)]);
        const size = Number(leader.sql("SELECT pg_database_size(current_database())", { user: APP_USER }));
        log(`database: ${(size / 1e6).toFixed(0)} MB`);
        leader.sql("SELECT pg_switch_wal()");
        await sleep(3000);
        const target = new Date().toISOString();
        await sleep(2000);

        log(`archive lag: pgbench -c 4 -j 2 -T ${seconds}, sampling pg_wal/archive_status every 500 ms`);
        const waiting: number[] = [];
        const oldest: number[] = [];
        let sampling = true;
        const sampler = (async () => {
            while (sampling) {
                const [n, age] = leader
                    .sql(
                        "SELECT count(*) || ' ' || coalesce(extract(epoch FROM now() - min(modification))::float8, 0) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
                    )
                    .split(" ");
                waiting.push(Number(n));
                oldest.push(Number(age));
                await sleep(500);
            }
        })();
        const load = await pgbench(leader, ["-c", "4", "-j", "2", "-T", String(seconds)]);
        sampling = false;
        await sampler;
        const tps = Number(/tps = ([0-9.]+)/.exec(load)?.[1]);
        const segments = Number(leader.sql("SELECT archived_count FROM pg_stat_archiver"));

        log("full backup (lz4, aes-256-cbc, one process)");
        const backup = pgbackrest(leader, ["backup", "--type=full"]);
        const info = JSON.parse(pgbackrest(leader, ["info", "--output=json"]).output)[0].backup.slice(-1)[0];
        const stored = info.info.repository.delta as number;
        leader.sql("SELECT pg_switch_wal()");
        await sleep(5000);
        const rowsAtEnd = Number(leader.sql("SELECT count(*) FROM pgbench_history", { user: APP_USER }));

        log("restore to the end of the archive");
        const latest = await timedRestore(cp, store, "bench-restore-latest", "/bench/source");
        log("restore to a point in time before the load");
        const pitr = await timedRestore(cp, store, "bench-restore-pitr", "/bench/source", target);

        const mb = size / 1e6;
        process.stdout.write(
            `\nbackup benchmark: pgbench scale ${scale}, ${mb.toFixed(0)} MB database, versitygw over TLS on loopback, 2 cores\n\n`,
        );
        process.stdout.write("| what | figure |\n|---|---|\n");
        process.stdout.write(
            `| archive lag under pgbench (${tps.toFixed(0)} tps, ${seconds} s, ${segments} segments archived in all) | segments waiting p50 ${percentile(waiting, 50)} / max ${Math.max(...waiting)}; oldest waiting p50 ${percentile(oldest, 50).toFixed(2)} s / max ${Math.max(...oldest).toFixed(2)} s |\n`,
        );
        process.stdout.write(
            `| full backup | ${backup.seconds.toFixed(1)} s, ${(mb / backup.seconds).toFixed(0)} MB/s, ${(stored / 1e6).toFixed(0)} MB stored |\n`,
        );
        process.stdout.write(
            `| restore to the end of the archive (start to writable) | ${latest.seconds.toFixed(1)} s, ${latest.rows} of ${rowsAtEnd} pgbench_history rows |\n`,
        );
        process.stdout.write(
            `| restore to a point in time before the load | ${pitr.seconds.toFixed(1)} s, ${pitr.rows} pgbench_history rows (0 expected) |\n`,
        );
    } finally {
        await src.destroy();
        cp.stop();
        await store.stop();
        store.remove();
    }
}

main().catch((err) => {
    process.stderr.write(`bench:backup failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
});
