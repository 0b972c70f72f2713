/**
 * `npm run local:up` (scripts/local/up.sh): builds what is missing (images), starts the real single-node cluster,
 * imports the images, deploys the `local` stack with the real Pulumi engine, and serves the API on 127.0.0.1
 * through a forwarder to its Service. Running it again updates the same stack. State: $LOCAL_UP_STATE (default
 * ~/.cache/stateful-flask-local-up); volumes and the passwords that open them: $LOCAL_CLUSTER_VOLUMES (default
 * ~/.cache/stateful-flask-volumes). `npm run local:down` removes the former and keeps the latter.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import {
    type Cluster,
    LOCAL_INGRESS_HOST,
    LOCAL_INGRESS_IP,
    ROOT,
    getJson,
    importImages,
    localUpDirs,
    openStack,
    progress,
    sh,
    claimNode,
    startCluster,
    toolchainBin,
} from "./driver";

const PORT = Number(process.env.LOCAL_UP_PORT ?? 8080);
const INGRESS_PORT = Number(process.env.LOCAL_UP_INGRESS_PORT ?? 8081);

async function portFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net
            .createServer()
            .once("error", () => resolve(false))
            .once("listening", () => s.close(() => resolve(true)));
        s.listen(port, "127.0.0.1");
    });
}

/**
 * socat from 127.0.0.1:`port` to `target` (a ClusterIP:port that kube-proxy routes), restarted when it changed; its
 * pid in `<state>/<name>.pid` (local:down stops it).
 */
async function forward(state: string, name: string, port: number, target: string): Promise<string> {
    const pidFile = path.join(state, `${name}.pid`);
    const to = `TCP:${target}`;
    if (fs.existsSync(pidFile)) {
        const [pid, oldTarget, oldPort] = fs.readFileSync(pidFile, "utf8").trim().split(" ");
        let alive = false;
        try {
            process.kill(Number(pid), 0);
            alive = true;
        } catch {
            /* gone */
        }
        if (alive && oldTarget === to && Number(oldPort) === port) return `http://127.0.0.1:${port}`;
        if (alive) process.kill(Number(pid), "SIGTERM");
        await new Promise((r) => setTimeout(r, 500));
    }
    if (!(await portFree(port))) {
        throw new Error(
            `127.0.0.1:${port} is in use; set ${name === "forwarder" ? "LOCAL_UP_PORT" : "LOCAL_UP_INGRESS_PORT"} to a free port`,
        );
    }
    const logFile = path.join(state, `${name}.log`);
    const child = spawn("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, to], {
        detached: true,
        stdio: ["ignore", fs.openSync(logFile, "a"), fs.openSync(logFile, "a")],
    });
    child.unref();
    fs.writeFileSync(pidFile, `${child.pid} ${to} ${port}\n`);
    return `http://127.0.0.1:${port}`;
}

async function main(): Promise<void> {
    const dirs = localUpDirs();
    fs.mkdirSync(dirs.state, { recursive: true });
    const bin = toolchainBin();

    progress("images: api, postgres, pause, coredns, traefik, versitygw (built when missing; cached by content)");
    sh(path.join(ROOT, "scripts", "images.sh"), [
        "build",
        "api",
        "postgres",
        "pause",
        "coredns",
        "traefik",
        "versitygw",
    ]);

    const other = claimNode(bin);
    if (other !== undefined && path.resolve(other) !== path.resolve(dirs.cluster)) {
        throw new Error(
            `another local cluster runs on this machine (state ${other}; the e2e suite?): stop it first (LOCAL_CLUSTER_STATE=${other} scripts/local-cluster.sh stop)`,
        );
    }
    progress(`cluster: starting (state ${dirs.cluster}, volumes ${dirs.volumes})`);
    const cluster: Cluster = startCluster(dirs.cluster, dirs.volumes, bin);
    progress("images: importing api and postgres into the node's containerd");
    importImages(cluster, ["api", "postgres"]);

    progress(
        "deploy: pulumi up of the local stack (the real engine; Postgres, the migration Job and the API become Ready)",
    );
    const started = Date.now();
    const stack = await openStack({ stateDir: dirs.pulumi, cluster });
    // With refresh: the stack's state may describe a cluster that is gone (reclaimed after the machine lost its
    // processes, or stopped by hand without local:down), whose objects a plain `up` would take as still there.
    const result = await stack.up({ onOutput: (out) => process.stdout.write(out), refresh: true });
    progress(
        `deploy: ${JSON.stringify(result.summary.resourceChanges ?? {})} in ${((Date.now() - started) / 1000).toFixed(0)}s`,
    );

    const svc = getJson(cluster, ["service", "stateful-flask", "-n", "stateful-namespace"]);
    const url = await forward(dirs.state, "forwarder", PORT, `${svc.spec.clusterIP}:80`);
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10000) });
    if (health.status !== 200) throw new Error(`${url}/healthz answered ${health.status}`);
    // The ingress path: Traefik's Service, which routes by the Host header the Ingress names.
    const ingress = await forward(dirs.state, "ingress-forwarder", INGRESS_PORT, `${LOCAL_INGRESS_IP}:80`);

    const outputs = Object.entries(result.outputs)
        .map(([k, o]) => `  ${k}: ${o.secret ? "[secret]" : JSON.stringify(o.value)}`)
        .join("\n");
    process.stdout.write(`\nOutputs of stack ${stack.name}:\n${outputs}\n\n`);
    process.stdout.write(`export KUBECONFIG=${cluster.kubeconfig}\n\n`);
    process.stdout.write(`The API serves at ${url}\n`);
    process.stdout.write(
        `  curl -X POST -H "Content-Type: application/json" -d '{"title": "New task", "description": "Deploy the stateful microservice"}' ${url}/tasks\n`,
    );
    process.stdout.write(`  curl ${url}/tasks\n`);
    process.stdout.write(
        `Through the ingress (Traefik, Host ${LOCAL_INGRESS_HOST}): curl -H "Host: ${LOCAL_INGRESS_HOST}" ${ingress}/tasks\n`,
    );
}

main().catch((err) => {
    process.stderr.write(`local:up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
});
