/**
 * The soak: faults and lifecycle steps in a random sequence on the real single-node cluster, for a duration, with a
 * writer through the API the whole time, and the promise checked after every step (issue 14). Each e2e case proves one
 * fault on a fresh deploy; this finds what only a sequence shows.
 *
 *   npm run soak -- [--minutes 60] [--seed N] [--steps switchover,kill-leader,...]
 *
 * After every step, within bounds:
 *   - every write the API acknowledged (201) is on the leader;
 *   - no two members accepted writes at once (sampled every second, all the time);
 *   - the archive catches up: the segment the leader writes is archived within ARCHIVE_BOUND_S (longer right after the
 *     S3 store was down);
 * and at the end a new full backup, then a restore to the end of the archive into a new stack (another namespace) that
 * holds every acknowledged write. A failing step prints the seed and the sequence so far, to replay with --seed and
 * --steps; the cluster's state is kept (E2E_ARTIFACTS) before it is stopped.
 */
import * as assert from "node:assert";
import * as path from "node:path";
import { POD_SCRIPT } from "../../components/postgres-pod";
import { key, localClusterScript, onOutput, openStack, progress, sh, waitFor } from "../../scripts/local/driver";
import {
    ApiWriter,
    NS,
    POSTGRES_IMAGE,
    POSTGRES_IMAGE_REBUILT,
    WritableSampler,
    configure,
    converge,
    e2e,
    get,
    healthy,
    inPostgres,
    k,
    killContainer,
    listTasks,
    psql,
    recordFailure,
    teardown,
    up,
} from "../e2e/fixture";

/** Seconds the archive may take to catch up after a step (after the store was down: the backlog's push as well). */
const ARCHIVE_BOUND_S = 120;
const REPLICAS = 3;

/** mulberry32: a small seeded generator, so that a sequence can be replayed from its seed. */
function generator(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

interface Args {
    minutes: number;
    seed: number;
    steps: string[];
    sequence?: string[];
}

function parseArgs(argv: string[]): Args {
    const out: Args = { minutes: 60, seed: Math.floor(Math.random() * 2 ** 31), steps: Object.keys(STEPS) };
    const names = (flag: string, value: string) => {
        const list = value.split(",");
        const bad = list.filter((s) => !(s in STEPS));
        if (bad.length)
            throw new Error(
                `soak: ${flag} names ${JSON.stringify(bad)}; expected steps of: ${Object.keys(STEPS).join(", ")}`,
            );
        return list;
    };
    for (let i = 0; i < argv.length; i += 2) {
        const [flag, value] = [argv[i], argv[i + 1] ?? ""];
        if (flag === "--minutes" && /^\d+$/.test(value) && Number(value) > 0) out.minutes = Number(value);
        else if (flag === "--seed" && /^\d+$/.test(value)) out.seed = Number(value);
        else if (flag === "--steps" && value) out.steps = names(flag, value);
        else if (flag === "--sequence" && value) out.sequence = names(flag, value);
        else
            throw new Error(
                `soak: ${flag} ${value} is not valid; expected --minutes N (N >= 1), --seed N, --steps a,b (the pool), --sequence a,b (exactly these, in order)`,
            );
    }
    return out;
}

// ------------------------------------------------------------------------------------------------------ steps

/** Patroni's REST API in a pod, with the API password from the pod's own environment (never on a command line). */
async function patroni(pod: string, method: string, route: string, body?: unknown): Promise<string> {
    const script =
        "import base64,json,os,sys,urllib.request as u\n" +
        "r=u.Request('http://127.0.0.1:8008'+sys.argv[2],data=(sys.argv[3].encode() if sys.argv[3] else None),method=sys.argv[1],headers={'Content-Type':'application/json'})\n" +
        "r.add_header('Authorization','Basic '+base64.b64encode(('patroni:'+os.environ['API_PASSWORD']).encode()).decode())\n" +
        "print(u.urlopen(r,timeout=60).read().decode())\n";
    return inPostgres(pod, ["python3", "-c", script, method, route, body === undefined ? "" : JSON.stringify(body)]);
}

/** A full backup now, on `pod` (the leader): pod.py full-backup, waited for. */
async function fullBackup(pod: string): Promise<void> {
    await inPostgres(pod, [POD_SCRIPT, "full-backup"]);
}

async function leaderPod(): Promise<string> {
    return (await healthy(600)).leader;
}

let storeDown = false;

const STEPS: Record<string, (rand: () => number) => Promise<string>> = {
    switchover: async () => {
        const leader = await leaderPod();
        await patroni(leader, "POST", "/switchover", { leader });
        return `switchover from ${leader}`;
    },
    "delete-leader": async () => {
        const leader = await leaderPod();
        await k(["delete", "pod", "-n", NS, leader, "--wait=false"]);
        return `deleted ${leader} (preStop switchover)`;
    },
    "force-delete-leader": async () => {
        const leader = await leaderPod();
        await k(["delete", "pod", "-n", NS, leader, "--grace-period=0", "--force", "--wait=false"]);
        return `force-deleted ${leader}`;
    },
    "kill-leader": async () => {
        const leader = await leaderPod();
        await killContainer(leader, { quiet: true });
        return `SIGKILL to ${leader}'s container`;
    },
    "kill-replica": async (rand) => {
        const { replicas } = await healthy(600);
        const victim = replicas[Math.floor(rand() * replicas.length)];
        await killContainer(victim, { quiet: true });
        return `SIGKILL to replica ${victim}'s container`;
    },
    "scale-down-up": async () => {
        await configure({ [key("postgresReplicas")]: "1", [key("apiReplicas")]: "1" });
        await up();
        await healthy(600);
        await configure({ [key("postgresReplicas")]: String(REPLICAS), [key("apiReplicas")]: String(REPLICAS) });
        await up();
        return `scaled ${REPLICAS} → 1 → ${REPLICAS}`;
    },
    "rolling-restart": async () => {
        await k(["rollout", "restart", "-n", NS, "statefulset/postgres"]);
        await k(["rollout", "status", "-n", NS, "statefulset/postgres", "--timeout=900s"]);
        return "rollout restart of the StatefulSet";
    },
    "image-roll": async () => {
        const current = (await get(["statefulset", "postgres", "-n", NS])).spec.template.spec.containers[0].image;
        const next = current === POSTGRES_IMAGE ? POSTGRES_IMAGE_REBUILT : POSTGRES_IMAGE;
        await configure({ [key("postgresImage")]: next });
        await up();
        return `image rolled ${current} → ${next}`;
    },
    "node-restart": async () => {
        localClusterScript((await e2e()).cluster, ["restart-node"]);
        return "kubelet and containerd restarted";
    },
    "full-backup": async () => {
        const leader = await leaderPod();
        await fullBackup(leader);
        return `full backup on ${leader}`;
    },
    "store-down": async (rand) => {
        const seconds = 20 + Math.floor(rand() * 70);
        await k(["scale", "-n", "backup-store", "deployment/versitygw", "--replicas=0"]);
        storeDown = true;
        await new Promise((r) => setTimeout(r, seconds * 1000));
        await k(["scale", "-n", "backup-store", "deployment/versitygw", "--replicas=1"]);
        await k(["rollout", "status", "-n", "backup-store", "deployment/versitygw", "--timeout=300s"]);
        return `the S3 store down for ${seconds} s`;
    },
};

// --------------------------------------------------------------------------------------------------- invariants

/** The ids of the task table on a pod. */
async function idsOn(pod: string): Promise<Set<number>> {
    const out = await psql(pod, "SELECT coalesce(string_agg(id::text, ','), '') FROM task");
    return new Set(out.split(",").filter(Boolean).map(Number));
}

/** Seconds until the segment the leader writes now is archived; throws past the bound. */
async function archiveCatchesUp(leader: string, boundS: number): Promise<number> {
    const started = Date.now();
    const wal = await psql(leader, "SELECT pg_walfile_name(pg_current_wal_lsn())");
    await psql(leader, "SELECT pg_switch_wal()");
    await waitFor(
        `${wal} archived by ${leader} (the archive catches up within ${boundS} s)`,
        boundS,
        async () =>
            (await psql(leader, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")) >= wal || undefined,
    );
    return (Date.now() - started) / 1000;
}

async function checkInvariants(writer: ApiWriter, sampler: WritableSampler, boundS: number): Promise<string> {
    const { leader } = await healthy(900);
    await writer.waitForAcks(5, 300);
    const have = await idsOn(leader);
    const missing = writer.acked.filter((id) => !have.has(id));
    assert.deepStrictEqual(missing, [], `acknowledged writes missing on the leader ${leader}`);
    const split = sampler.splitBrain();
    assert.deepStrictEqual(split, [], "samples in which two members accepted writes");
    const archived = await archiveCatchesUp(leader, boundS);
    return `leader ${leader}, ${writer.acked.length} acknowledged, all on the leader; archive caught up in ${archived.toFixed(1)} s`;
}

// -------------------------------------------------------------------------------------------------- the restore

/**
 * A new stack in other namespaces, restored from this stack's repository to the end of its archive: every acknowledged
 * write must be there. Destroyed afterwards (its own repository path too).
 */
async function restoreIntoNewStack(acked: number[]): Promise<string> {
    const { cluster, tmp } = await e2e();
    const ns = "soak-restore";
    const stack = await openStack({
        stateDir: path.join(tmp, "pulumi"),
        cluster,
        stackName: "soak-restore",
        config: {
            [key("postgresNamespace")]: ns,
            [key("apiNamespace")]: `${ns}-api`,
            [key("ingressController")]: "none",
            [key("backupPath")]: "/stateful-flask/soak-restore",
            [key("restoreFrom")]: "/stateful-flask/local",
            [key("protectData")]: "false",
        },
    });
    try {
        const started = Date.now();
        const result = await stack.up({ onOutput: onOutput() });
        assert.strictEqual(result.summary.result, "succeeded");
        await waitFor("the restored cluster's leader", 900, async () => {
            const pods = JSON.parse(
                sh(
                    path.join(cluster.bin, "kubectl"),
                    ["--kubeconfig", cluster.kubeconfig, "get", "pods", "-n", ns, "-l", "role=master", "-o", "json"],
                    { quiet: true },
                ),
            ).items;
            return (
                pods.some((p: any) =>
                    (p.status.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True"),
                ) || undefined
            );
        });
        const out = sh(
            path.join(cluster.bin, "kubectl"),
            [
                "--kubeconfig",
                cluster.kubeconfig,
                "exec",
                "-n",
                ns,
                "postgres-0",
                "-c",
                "postgres",
                "--",
                "psql",
                "-X",
                "-A",
                "-t",
                "-d",
                "stateful-flask-db",
                "-c",
                "SELECT coalesce(string_agg(id::text, ','), '') FROM task",
            ],
            { quiet: true },
        );
        const have = new Set(out.trim().split(",").filter(Boolean).map(Number));
        const missing = acked.filter((id) => !have.has(id));
        assert.deepStrictEqual(missing, [], "acknowledged writes missing from the restore to the end of the archive");
        return `restored into a new stack in ${((Date.now() - started) / 1000).toFixed(0)} s: ${have.size} rows, all ${acked.length} acknowledged writes`;
    } finally {
        await stack
            .destroy({ onOutput: onOutput() })
            .catch((e) => progress(`soak: destroying the restore stack failed: ${e}`));
    }
}

// ------------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    const rand = generator(args.seed);
    progress(
        `soak: seed ${args.seed}, ${args.sequence ? `the sequence ${args.sequence.join(",")}` : `${args.minutes} min of steps drawn from ${args.steps.join(", ")}`}`,
    );
    await e2e();
    await configure({
        [key("postgresReplicas")]: String(REPLICAS),
        [key("apiReplicas")]: String(REPLICAS),
        [key("archiveTimeout")]: "10",
    });
    await up();
    await healthy(900);
    const writer = new ApiWriter("soak", 250);
    const sampler = new WritableSampler();
    const done: string[] = [];
    let current = "the first check";
    const deadline = Date.now() + args.minutes * 60 * 1000;
    try {
        await checkInvariants(writer, sampler, ARCHIVE_BOUND_S);
        // --sequence replays exactly those steps; otherwise they are drawn from the seed until the time is up (the seed
        // alone replays a sequence: the draws, and the choices inside the steps, come from it).
        for (let i = 0; args.sequence ? i < args.sequence.length : Date.now() < deadline; i++) {
            current = args.sequence ? args.sequence[i] : args.steps[Math.floor(rand() * args.steps.length)];
            const started = Date.now();
            storeDown = false;
            const what = await STEPS[current](rand);
            const state = await checkInvariants(writer, sampler, storeDown ? 2 * ARCHIVE_BOUND_S : ARCHIVE_BOUND_S);
            done.push(current);
            progress(
                `soak: step ${done.length} ${current}: ${what} (${((Date.now() - started) / 1000).toFixed(0)} s); ${state}`,
            );
        }
        current = "the final backup and restore";
        await writer.stop();
        await sampler.stop();
        const { leader } = await healthy(900);
        await fullBackup(leader);
        await archiveCatchesUp(leader, ARCHIVE_BOUND_S);
        const rows = await listTasks();
        progress(`soak: a new full backup on ${leader}; the API lists ${rows.length} rows`);
        progress(`soak: ${await restoreIntoNewStack(writer.acked)}`);
        progress(`soak: PASSED: seed ${args.seed}, ${done.length} steps, every invariant held (${done.join(",")})`);
    } catch (err) {
        recordFailure(`soak-seed-${args.seed}`);
        progress(
            `soak: FAILED at step ${done.length + 1} (${current}) with seed ${args.seed}: ${err instanceof Error ? err.message : err}`,
        );
        progress(`soak: replay with: npm run soak -- --seed ${args.seed} --sequence ${[...done, current].join(",")}`);
        throw err;
    } finally {
        await writer.stop();
        await sampler.stop();
        if (!process.env.SOAK_KEEP) {
            await converge().catch(() => undefined);
            teardown();
        }
    }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
        progress(`soak: ${signal}: stopping the cluster`);
        teardown();
        process.exit(signal === "SIGINT" ? 130 : 143);
    });
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`${err instanceof Error ? err.stack : err}\n`);
        process.exit(1);
    },
);
