/**
 * Backups in the real pods, to the local cluster's S3 store (versitygw, scripts/local-cluster/backup-store.yaml):
 * the leader archives WAL and has a full backup, what `backupStatus` prints says so; then the restore drill as a
 * user runs it: the database is lost (`pulumi destroy` with protectData false deletes its volumes), and `pulumi up`
 * with `restoreFrom` and `restoreTargetTime` brings back exactly the rows acknowledged before that time.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LOCAL_BACKUP_STORE, key, onOutput, sh, waitFor } from "../../scripts/local/driver";
import { NS, configure, converge, e2e, get, healthy, postTask, psql, rowsEverywhere, up } from "./fixture";

/** Switches the leader to a new WAL segment and waits until the one before is archived. */
async function archiveNow(leader: string): Promise<void> {
    const wal = await psql(leader, "SELECT pg_walfile_name(pg_current_wal_lsn())");
    await psql(leader, "SELECT pg_switch_wal()");
    await waitFor(
        `${wal} archived`,
        120,
        async () =>
            (await psql(leader, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")) >= wal || undefined,
    );
}

describe("e2e 07: backups in the real pods, and a restore through the program", function () {
    before(async () => {
        await converge();
    });

    after(async function () {
        this.timeout(30 * 60 * 1000);
        // The restored cluster is a new system: archiving it into the original repository would be refused (another
        // system id), so the drill's stack goes, with both repositories, and the suite goes on with a fresh one.
        const { stack, cluster } = await e2e();
        await configure({ [key("protectData")]: "false" });
        await up();
        await stack.destroy({ onOutput: onOutput() });
        fs.rmSync(path.join(cluster.volumesDir, ".backup-store", "data", LOCAL_BACKUP_STORE.bucket, "stateful-flask"), {
            recursive: true,
            force: true,
        });
        await converge();
    });

    it("the leader archives every WAL segment and has a full backup in the S3 store; the backupStatus output shows both", async () => {
        const { stack, cluster } = await e2e();
        const { leader } = await healthy();
        const annotations = await waitFor("the backup annotations on the leader's pod", 300, async () => {
            const a = (await get(["pod", leader, "-n", NS])).metadata.annotations ?? {};
            return a["stateful-flask/last-backup"] && /^ok, last [0-9A-F]{24}$/.test(a["stateful-flask/archive"] ?? "")
                ? a
                : undefined;
        });
        assert.match(annotations["stateful-flask/last-backup"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        const outputs = await stack.outputs();
        assert.strictEqual(outputs.backups, undefined, "no 'backups are off' warning");
        const status = JSON.parse(
            sh("sh", ["-c", outputs.backupStatus.value as string], {
                env: { ...process.env, PATH: `${cluster.bin}:${process.env.PATH}`, KUBECONFIG: cluster.kubeconfig },
                quiet: true,
            }),
        );
        assert.strictEqual(status.repository, "ok");
        assert.ok(
            status.backups.length >= 1 && status.backups.every((b: any) => b.type === "full"),
            JSON.stringify(status.backups),
        );
        assert.ok(status.archiver.archived > 0, JSON.stringify(status.archiver));
        assert.ok(
            status.archiver.failed === 0 || status.archiver.last_archived_time > status.archiver.last_failed_time,
            JSON.stringify(status.archiver),
        );
    });

    it("the database is lost; pulumi up with restoreFrom and restoreTargetTime brings back exactly the rows acknowledged before that time", async () => {
        const { stack } = await e2e();
        for (let i = 0; i < 20; i++)
            assert.strictEqual((await postTask(`before the target ${i}`, "kept by the restore")).status, 201);
        const before = await rowsEverywhere();
        const { leader } = await healthy();
        await archiveNow(leader);
        await new Promise((r) => setTimeout(r, 2000));
        const target = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        await new Promise((r) => setTimeout(r, 2000));
        for (let i = 0; i < 10; i++)
            assert.strictEqual((await postTask(`after the target ${i}`, "not in the restore")).status, 201);
        await archiveNow(leader);

        // Lost: the namespace, the PVCs and (reclaim policy Delete) the volumes.
        await configure({ [key("protectData")]: "false" });
        await up();
        await stack.destroy({ onOutput: onOutput() });
        assert.strictEqual(await get(["namespace", NS]), undefined);

        await configure({
            [key("restoreFrom")]: "/stateful-flask/local",
            [key("restoreTargetTime")]: target,
            [key("backupPath")]: "/stateful-flask/local-restored",
        });
        await up();
        await healthy(600);
        assert.deepStrictEqual(await rowsEverywhere(), before, `exactly the rows acknowledged before ${target}`);
        const logs = sh(
            path.join((await e2e()).cluster.bin, "kubectl"),
            ["--kubeconfig", (await e2e()).cluster.kubeconfig, "logs", "-n", NS, "postgres-0", "-c", "postgres"],
            { quiet: true },
        );
        assert.match(
            logs,
            /archive check: backup \S+, \d+ WAL segments from its start to the newest, no hole, every file verified/,
        );
        assert.match(logs, new RegExp(`restoring backup \\S+ from /stateful-flask/local to ${target}`));
        assert.strictEqual((await postTask("after the restore")).status, 201, "the restored database takes writes");
    });
});
