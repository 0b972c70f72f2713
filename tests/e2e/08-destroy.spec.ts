/**
 * What `pulumi destroy` does to the data, as the README promises: with protectData (the default) it stops at the
 * protected resources, so the database (namespace, StatefulSet, credentials, PVCs) and every row stay, while what
 * is not protected (the API) is deleted and comes back with the next `up`; with protectData false on a StorageClass that deletes (standard here, do-block-storage on
 * DigitalOcean) the namespace, its PVCs and the volumes go on purpose, and a new `up`, once the old repository is
 * deleted too, starts an empty database on new volumes. Runs last: it destroys the suite's stack.
 */
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LOCAL_BACKUP_STORE, key, onOutput } from "../../scripts/local/driver";
import { NS, claims, configure, e2e, get, healthy, listTasks, postTask, psql, rowsEverywhere, up } from "./fixture";

describe("e2e 08: pulumi destroy and the data", function () {
    it("with protectData true (the default): destroy stops at the database, which keeps its volumes and every row; up brings the API back", async () => {
        const { stack } = await e2e();
        await up();
        await healthy();
        assert.strictEqual((await postTask("before destroy")).status, 201);
        const rows = await rowsEverywhere();
        const before = await claims();
        const sts = (await get(["statefulset", "postgres", "-n", NS])).metadata.uid;
        let failure: any;
        try {
            await stack.destroy({ onOutput: onOutput() });
        } catch (err) {
            failure = err;
        }
        assert.ok(failure, "destroy of a protected stack succeeded");
        assert.match(`${failure.message}${failure.stderr ?? ""}`, /protect/);
        assert.strictEqual(
            (await get(["statefulset", "postgres", "-n", NS])).metadata.uid,
            sts,
            "the StatefulSet is kept",
        );
        assert.deepStrictEqual(await claims(), before, "the PVCs are kept");
        const count = Number(await psql("postgres-0", "SELECT count(*) FROM task"));
        assert.strictEqual(count, rows.count, "every row is on the volume");
        await up();
        await healthy();
        assert.deepStrictEqual(await rowsEverywhere(), rows);
    });

    it("with protectData false: destroy deletes the namespace, the PVCs and (reclaim policy Delete) the volumes; up again starts empty", async () => {
        const { stack, cluster } = await e2e();
        await configure({ [key("protectData")]: "false" });
        await up();
        const before = await claims();
        const volumes = Object.values(before).map((c) => c.volume);
        assert.ok(volumes.length >= 1);
        const dirs = (await get(["pv"])).items
            .filter((pv: any) => volumes.includes(pv.metadata.name))
            .map((pv: any) => pv.spec.local.path as string);
        assert.ok(dirs.every((d: string) => fs.existsSync(d)));
        await stack.destroy({ onOutput: onOutput() });
        assert.strictEqual(await get(["namespace", NS]), undefined);
        await new Promise((r) => setTimeout(r, 5000));
        const left = (await get(["pv"])).items.map((pv: any) => pv.metadata.name);
        assert.deepStrictEqual(
            left.filter((v: string) => volumes.includes(v)),
            [],
            "the volumes are deleted with their claims",
        );
        assert.ok(
            dirs.every((d: string) => !fs.existsSync(d)),
            `volume directories left: ${dirs.filter((d: string) => fs.existsSync(d))}`,
        );
        assert.ok(dirs.every((d: string) => d.startsWith(path.join(cluster.volumesDir, NS))));

        // The destroyed cluster's repository stays in the bucket, and a new cluster refuses to start over it (docs/backups.md,
        // "After a total loss"): its owner deletes it on purpose here (or sets a new backupPath).
        fs.rmSync(path.join(cluster.volumesDir, ".backup-store", "data", LOCAL_BACKUP_STORE.bucket, "stateful-flask"), {
            recursive: true,
            force: true,
        });
        await up();
        await healthy();
        assert.deepStrictEqual(await listTasks(), [], "a new, empty database");
        const after = await claims();
        assert.ok(
            Object.keys(after).every((name) => after[name].uid !== before[name]?.uid),
            "new PVCs",
        );
    });
});
