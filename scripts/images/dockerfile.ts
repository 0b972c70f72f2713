/**
 * The subset of the Dockerfile language the project's Dockerfiles use, parsed so that the same file builds the
 * production image (docker buildx, in CI) and the local one (scripts/images/build.ts, a chroot, here). Anything
 * outside the subset is an error naming the line, never silently skipped: a Dockerfile that only one builder
 * understands would make the two images differ.
 */

export type Instruction =
    | { readonly kind: "FROM"; readonly image: string; readonly line: number }
    | { readonly kind: "ARG"; readonly name: string; readonly default?: string; readonly line: number }
    | { readonly kind: "ENV"; readonly vars: ReadonlyArray<readonly [string, string]>; readonly line: number }
    | { readonly kind: "RUN"; readonly command: string; readonly line: number }
    | { readonly kind: "COPY"; readonly sources: readonly string[]; readonly dest: string; readonly chown?: string; readonly chmod?: string; readonly line: number }
    | { readonly kind: "WORKDIR"; readonly path: string; readonly line: number }
    | { readonly kind: "USER"; readonly user: string; readonly line: number }
    | { readonly kind: "EXPOSE"; readonly ports: readonly string[]; readonly line: number }
    | { readonly kind: "LABEL"; readonly labels: ReadonlyArray<readonly [string, string]>; readonly line: number }
    | { readonly kind: "CMD" | "ENTRYPOINT"; readonly argv: readonly string[]; readonly line: number }
    | { readonly kind: "STOPSIGNAL"; readonly signal: string; readonly line: number };

export class DockerfileError extends Error {
    constructor(file: string, line: number, message: string) {
        super(`${file}:${line}: ${message}`);
        this.name = "DockerfileError";
    }
}

/** Joins continuation lines and drops comments; returns [first line number, text] pairs. */
function logicalLines(text: string): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    let current = "";
    let start = 0;
    text.split("\n").forEach((raw, i) => {
        const line = raw.replace(/\r$/, "");
        // A comment line inside a continuation is dropped too (as Docker does).
        if (/^\s*#/.test(line)) {
            return;
        }
        if (current === "" && line.trim() === "") {
            return;
        }
        if (current === "") {
            start = i + 1;
        }
        if (/\\\s*$/.test(line)) {
            current += line.replace(/\\\s*$/, "") + " ";
        } else {
            current += line;
            out.push([start, current.trim()]);
            current = "";
        }
    });
    if (current.trim() !== "") {
        out.push([start, current.trim()]);
    }
    return out;
}

/** Splits `k=v k2="v 2"` pairs (ENV, LABEL); also accepts the legacy `ENV k v` form. */
function keyValues(file: string, line: number, rest: string, legacy: boolean): Array<[string, string]> {
    const pairs: Array<[string, string]> = [];
    if (legacy && !/^[A-Za-z_][A-Za-z0-9_.-]*=/.test(rest)) {
        const m = /^(\S+)\s+(.*)$/.exec(rest);
        if (!m) {
            throw new DockerfileError(file, line, `expected KEY=VALUE or KEY VALUE, got "${rest}"`);
        }
        return [[m[1], m[2]]];
    }
    const re = /\s*([^=\s]+)=("((?:[^"\\]|\\.)*)"|(\S*))/y;
    let m: RegExpExecArray | null;
    let pos = 0;
    while (pos < rest.length && (m = re.exec(rest)) !== null) {
        pairs.push([m[1], m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[4]]);
        pos = re.lastIndex;
    }
    if (rest.slice(pos).trim() !== "") {
        throw new DockerfileError(file, line, `cannot parse "${rest.slice(pos).trim()}"; expected KEY=VALUE pairs`);
    }
    return pairs;
}

function jsonArgv(file: string, line: number, kind: string, rest: string): string[] {
    let argv: unknown;
    try {
        argv = JSON.parse(rest);
    } catch {
        throw new DockerfileError(file, line, `${kind} must use the exec form (a JSON array), got ${rest}`);
    }
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every(a => typeof a === "string")) {
        throw new DockerfileError(file, line, `${kind} must be a non-empty JSON array of strings`);
    }
    return argv as string[];
}

/** Parses a Dockerfile; `file` is used in error messages. */
export function parseDockerfile(text: string, file = "Dockerfile"): Instruction[] {
    const instructions: Instruction[] = [];
    for (const [line, content] of logicalLines(text)) {
        const m = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(content);
        if (!m) {
            throw new DockerfileError(file, line, `cannot parse "${content}"`);
        }
        const kind = m[1].toUpperCase();
        const rest = m[2].trim();
        switch (kind) {
            case "FROM": {
                if (/\s/.test(rest) || rest.startsWith("--")) {
                    throw new DockerfileError(file, line, `FROM takes one image (no --platform, no AS stage): "${rest}"`);
                }
                instructions.push({ kind, image: rest, line });
                break;
            }
            case "ARG": {
                const a = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(rest);
                if (!a) {
                    throw new DockerfileError(file, line, `ARG expects NAME or NAME=default, got "${rest}"`);
                }
                instructions.push({ kind, name: a[1], default: a[2]?.replace(/^"(.*)"$/, "$1"), line });
                break;
            }
            case "ENV":
                instructions.push({ kind, vars: keyValues(file, line, rest, true), line });
                break;
            case "LABEL":
                instructions.push({ kind, labels: keyValues(file, line, rest, false), line });
                break;
            case "RUN":
                if (rest.startsWith("[") || rest.startsWith("--")) {
                    throw new DockerfileError(file, line, "RUN must use the shell form without flags");
                }
                instructions.push({ kind, command: rest, line });
                break;
            case "COPY": {
                const words = rest.split(/\s+/);
                let chown: string | undefined;
                let chmod: string | undefined;
                while (words[0]?.startsWith("--")) {
                    const flag = words.shift() as string;
                    const f = /^--(chown|chmod)=(\S+)$/.exec(flag);
                    if (!f) {
                        throw new DockerfileError(file, line, `COPY supports --chown= and --chmod= only, got ${flag}`);
                    }
                    if (f[1] === "chown") chown = f[2]; else chmod = f[2];
                }
                if (words.length < 2) {
                    throw new DockerfileError(file, line, "COPY needs at least one source and a destination");
                }
                const dest = words.pop() as string;
                for (const s of words) {
                    if (s.startsWith("/") || s.split("/").includes("..")) {
                        throw new DockerfileError(file, line, `COPY source "${s}" must be a path inside the build context`);
                    }
                }
                instructions.push({ kind, sources: words, dest, chown, chmod, line });
                break;
            }
            case "WORKDIR":
                if (!rest.startsWith("/")) {
                    throw new DockerfileError(file, line, `WORKDIR must be absolute, got "${rest}"`);
                }
                instructions.push({ kind, path: rest, line });
                break;
            case "USER":
                instructions.push({ kind, user: rest, line });
                break;
            case "EXPOSE":
                instructions.push({ kind, ports: rest.split(/\s+/), line });
                break;
            case "CMD":
            case "ENTRYPOINT":
                instructions.push({ kind, argv: jsonArgv(file, line, kind, rest), line });
                break;
            case "STOPSIGNAL":
                instructions.push({ kind, signal: rest, line });
                break;
            default:
                throw new DockerfileError(file, line, `${kind} is not supported by the local image builder (scripts/images/build.ts); ` +
                    "supported: FROM ARG ENV LABEL RUN COPY WORKDIR USER EXPOSE CMD ENTRYPOINT STOPSIGNAL");
        }
    }
    const from = instructions.filter(i => i.kind === "FROM");
    if (from.length !== 1) {
        throw new DockerfileError(file, 1, `expected exactly one FROM (single-stage builds only), found ${from.length}`);
    }
    const firstNonArg = instructions.find(i => i.kind !== "ARG");
    if (firstNonArg?.kind !== "FROM") {
        throw new DockerfileError(file, firstNonArg?.line ?? 1, "the first instruction after ARGs must be FROM");
    }
    return instructions;
}

/** Expands $NAME and ${NAME} from `vars` (unknown names become ""), as Docker does in ENV, COPY, WORKDIR, USER. */
export function expand(value: string, vars: Readonly<Record<string, string>>): string {
    return value.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, a, b) => vars[a ?? b] ?? "");
}
