/**
 * Replication benchmark (not a test): synchronous (the default) against asynchronous replication, in one run, on
 * three Patroni members with the Kubernetes DCS (images/postgres/tests/harness.ts). For each mode a fresh cluster,
 * pgbench TPC-B on the leader, and side by side: throughput, commit latency p50/p99 (pgbench's per-transaction
 * log), and the replicas' replay lag p50/p99 (pg_stat_replication, sampled every 500 ms).
 *
 *   npm run bench:replication [SECONDS] [CLIENTS]      (default 30 s, 4 clients, scale 10)
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
    APP_DB,
    APP_USER,
    ControlPlane,
    PASSWORDS,
    PG_BIN,
    PatroniCluster,
    psql,
    sleep,
    tempDir,
} from "../images/postgres/tests/harness";
import { percentile, progressLog } from "./common";

const log = progressLog("bench:replication");

interface Result {
    mode: string;
    tps: number;
    commitP50: number;
    commitP99: number;
    lagP50: number;
    lagP99: number;
    lagMax: number;
    syncStandbys: number;
}

async function measure(cp: ControlPlane, mode: "on" | "off", seconds: number, clients: number): Promise<Result> {
    const cluster = await PatroniCluster.create(cp, `bench-sync-${mode}`, 3, { SYNCHRONOUS_MODE: mode });
    try {
        log(`${mode}: bootstrapping three members`);
        cluster.members[0].start();
        await cluster.healthy(0);
        cluster.members[1].start();
        cluster.members[2].start();
        const { leader } = await cluster.healthy(2);
        await sleep(3000); // the synchronous standby is chosen a loop after streaming starts
        const syncStandbys = Number(
            psql(leader.pgPort, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"),
        );
        const env = { ...process.env, PGPASSWORD: PASSWORDS.app };
        const conn = ["-h", "127.0.0.1", "-p", String(leader.pgPort), "-U", APP_USER, APP_DB];
        log(`${mode}: pgbench -i -s 10`);
        const init = spawnSync(path.join(PG_BIN, "pgbench"), ["-i", "-s", "10", "-q", ...conn], {
            env,
            encoding: "utf8",
        });
        if (init.status !== 0) throw new Error(`pgbench -i: ${init.stderr}`);
        const logDir = tempDir("pgbench-");
        const lags: number[] = [];
        let sampling = true;
        const sampler = (async () => {
            while (sampling) {
                const out = psql(
                    leader.pgPort,
                    "SELECT coalesce(max(EXTRACT(epoch FROM replay_lag) * 1000), 0) FROM pg_stat_replication",
                );
                lags.push(Number(out));
                await sleep(500);
            }
        })();
        log(`${mode}: pgbench -c ${clients} -j 2 -T ${seconds} (per-transaction log)`);
        const bench = spawn(
            path.join(PG_BIN, "pgbench"),
            [
                "-c",
                String(clients),
                "-j",
                "2",
                "-T",
                String(seconds),
                "-l",
                `--log-prefix=${path.join(logDir, "tx")}`,
                ...conn,
            ],
            { env, cwd: logDir, stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        bench.stdout.on("data", (b: Buffer) => (out += b.toString()));
        bench.stderr.on("data", (b: Buffer) => (out += b.toString()));
        const code: number = await new Promise((r) => bench.once("exit", (c) => r(c ?? 1)));
        sampling = false;
        await sampler;
        if (code !== 0) throw new Error(`pgbench: ${out}`);
        const tps = Number(/tps = ([0-9.]+)/.exec(out)?.[1]);
        const latencies: number[] = [];
        for (const f of fs.readdirSync(logDir).filter((n) => n.startsWith("tx"))) {
            for (const line of fs.readFileSync(path.join(logDir, f), "utf8").split("\n")) {
                const fields = line.split(" ");
                if (fields.length >= 3) latencies.push(Number(fields[2]) / 1000);
            }
        }
        fs.rmSync(logDir, { recursive: true, force: true });
        return {
            mode,
            tps,
            commitP50: percentile(latencies, 50),
            commitP99: percentile(latencies, 99),
            lagP50: percentile(lags, 50),
            lagP99: percentile(lags, 99),
            lagMax: Math.max(...lags),
            syncStandbys,
        };
    } finally {
        await cluster.destroy();
    }
}

async function main(): Promise<void> {
    const seconds = Number(process.argv[2] ?? 30);
    const clients = Number(process.argv[3] ?? 4);
    const cp = await ControlPlane.start();
    const results: Result[] = [];
    try {
        results.push(await measure(cp, "on", seconds, clients));
        results.push(await measure(cp, "off", seconds, clients));
    } finally {
        cp.stop();
    }
    process.stdout.write(`\npgbench TPC-B, scale 10, ${clients} clients, ${seconds} s, three members on loopback:\n\n`);
    process.stdout.write(
        "| synchronous mode | sync standbys | tps | transaction latency p50 / p99 (ms) | replay lag p50 / p99 / max (ms) |\n|---|---|---|---|---|\n",
    );
    for (const r of results) {
        process.stdout.write(
            `| ${r.mode} | ${r.syncStandbys} | ${r.tps.toFixed(0)} | ${r.commitP50.toFixed(1)} / ${r.commitP99.toFixed(1)} | ${r.lagP50.toFixed(1)} / ${r.lagP99.toFixed(1)} / ${r.lagMax.toFixed(1)} |\n`,
        );
    }
}

main().catch((err) => {
    process.stderr.write(`bench:replication failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
});
