/** What the benchmarks share: a progress logger with the elapsed time, and percentiles. */

/** A logger that prefixes each line with `[<name> <elapsed>s]`, on stderr (the results go to stdout). */
export function progressLog(name: string): (msg: string) => void {
    const t0 = Date.now();
    return (msg) => process.stderr.write(`[${name} ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

/** The p-th percentile (nearest rank) of `values`; NaN when empty. */
export function percentile(values: number[], p: number): number {
    if (values.length === 0) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
