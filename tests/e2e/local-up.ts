/**
 * `npm run local:up` (scripts/local-up.sh): starts the loopback control plane and deploys the `local` stack
 * with the real Pulumi engine, then prints the stack's outputs. State: $LOCAL_UP_STATE
 * (default ~/.cache/stateful-flask-local-up): `cluster/` (scripts/kwok-cluster.sh) and `pulumi/` (backend,
 * PULUMI_HOME, workspace, passphrase). Running it again updates the same stack.
 */
import * as os from "os";
import * as path from "path";
import { onOutput, openStack, startCluster, toolchainBin } from "./driver";

async function main(): Promise<void> {
    const state = process.env.LOCAL_UP_STATE ?? path.join(os.homedir(), ".cache", "stateful-flask-local-up");
    const t0 = Date.now();
    const bin = toolchainBin();
    const cluster = startCluster(path.join(state, "cluster"), bin);
    const t1 = Date.now();
    const stack = await openStack({ stateDir: path.join(state, "pulumi"), cluster });
    const result = await stack.up({ onOutput: onOutput() ?? (out => process.stdout.write(out)) });
    const t2 = Date.now();

    const outputs = Object.entries(result.outputs)
        .map(([k, o]) => `  ${k}: ${o.secret ? "[secret]" : JSON.stringify(o.value)}`).join("\n");
    process.stdout.write(`\nOutputs of stack ${stack.name}:\n${outputs}\n\n`);
    process.stdout.write(`${JSON.stringify(result.summary.resourceChanges ?? {})} in ${((t2 - t1) / 1000).toFixed(0)}s ` +
        `(control plane ${((t1 - t0) / 1000).toFixed(0)}s)\n`);
    process.stdout.write(`export KUBECONFIG=${cluster.kubeconfig}\n`);
    const p = path.join(state, "pulumi");
    process.stdout.write(`secret outputs: PATH=${bin}:$PATH PULUMI_HOME=${p}/home PULUMI_CONFIG_PASSPHRASE_FILE=${p}/passphrase ` +
        `PULUMI_BACKEND_URL=file://${p}/backend pulumi stack output --show-secrets --stack local -C ${p}/workspace\n`);
}

main().catch(err => {
    process.stderr.write(`local:up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
});
