/**
 * Failover benchmark (not a test): three Patroni members with the Kubernetes DCS (the image's entrypoint on real
 * processes, images/postgres/tests/harness.ts), a writer inserting every 20 ms through a multi-host DSN with
 * target_session_attrs=read-write, and RUNS times: kill -9 of the leader (Patroni, the postmaster and its
 * backends, as the end of its container would), the time from the kill to the first write acknowledged by the new
 * leader, and the acknowledged writes the new leader lacks. Then the old leader rejoins (pg_rewind) before the
 * next run.
 *
 *   npm run bench:failover [RUNS]          (default 10; SYNCHRONOUS_MODE=off compares asynchronous replication)
 */
import { ControlPlane, PatroniCluster, Writer, idsOn, missingAcks, sleep } from "../images/postgres/tests/harness";
import { percentile, progressLog } from "./common";

const log = progressLog("bench:failover");

async function main(): Promise<void> {
    const runs = Number(process.argv[2] ?? 10);
    const mode = process.env.SYNCHRONOUS_MODE ?? "on";
    log(`starting the control plane and three members (synchronous mode ${mode})`);
    const cp = await ControlPlane.start();
    const cluster = await PatroniCluster.create(cp, "bench-failover", 3, { SYNCHRONOUS_MODE: mode });
    const results: Array<{ run: number; seconds: number; acked: number; lost: number; from: string; to: string }> = [];
    try {
        cluster.members[0].start();
        await cluster.healthy(0);
        cluster.members[1].start();
        cluster.members[2].start();
        await cluster.healthy(2);
        for (let run = 1; run <= runs; run++) {
            const { leader } = await cluster.healthy(2, 180000);
            const writer = new Writer(cluster.dsn(), 20);
            await writer.waitForAcks(100);
            const killedAt = Date.now();
            await leader.crash();
            const deadAt = Date.now();
            // Every acknowledgement after the old leader's processes are gone came from the new leader.
            const first = await (async () => {
                for (;;) {
                    const t = writer.firstAckAfter(deadAt);
                    if (t !== undefined) return t;
                    if (Date.now() - killedAt > 120000)
                        throw new Error("no write acknowledged within 120 s of the kill");
                    await sleep(50);
                }
            })();
            await writer.waitForAcks(50);
            await writer.stop();
            const next = await cluster.leader();
            const lost = missingAcks(writer, idsOn(next)).length;
            const seconds = (first - killedAt) / 1000;
            results.push({ run, seconds, acked: writer.acked.size, lost, from: leader.name, to: next.name });
            log(
                `run ${run}/${runs}: ${leader.name} killed, ${next.name} took the first write after ${seconds.toFixed(2)} s; ${lost} of ${writer.acked.size} acknowledged writes lost`,
            );
            leader.start();
            await cluster.healthy(2, 180000);
        }
    } finally {
        await cluster.destroy();
        cp.stop();
    }
    const secs = results.map((r) => r.seconds);
    const lost = results.reduce((n, r) => n + r.lost, 0);
    const acked = results.reduce((n, r) => n + r.acked, 0);
    process.stdout.write(
        `\n| run | killed | new leader | kill -9 to first acknowledged write (s) | acknowledged | lost |\n|---|---|---|---|---|---|\n`,
    );
    for (const r of results)
        process.stdout.write(`| ${r.run} | ${r.from} | ${r.to} | ${r.seconds.toFixed(2)} | ${r.acked} | ${r.lost} |\n`);
    process.stdout.write(
        `\nsynchronous mode ${mode}, ${results.length} runs: p50 ${percentile(secs, 50).toFixed(2)} s, max ${Math.max(...secs).toFixed(2)} s; ` +
            `acknowledged writes lost: ${lost} of ${acked}\n`,
    );
}

main().catch((err) => {
    process.stderr.write(`bench:failover failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
});
