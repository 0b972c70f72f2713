/**
 * Times a whole-stack evaluation of index.ts under Pulumi mocks (every component, every resource registered).
 * Usage: npx ts-node bench/evaluate-stack.ts [dev|local] [runs]
 * The first run includes loading and compiling the program's modules; later runs re-require them from scratch.
 */
import { evaluate, type StackName } from "../tests/helpers/program";

async function main(): Promise<void> {
    const stack = (process.argv[2] ?? "dev") as StackName;
    const runs = Number(process.argv[3] ?? 10);
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < runs; i++) {
        const start = process.hrtime.bigint();
        count = (await evaluate(stack)).resources.length;
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const sorted = [...times.slice(1)].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    console.log(
        `stack ${stack}: ${count} registrations; first run ${times[0].toFixed(0)} ms; ` +
            `next ${sorted.length}: p50 ${pct(0.5).toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms`,
    );
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
