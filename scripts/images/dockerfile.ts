/**
 * Reads a Dockerfile's instructions: enough for the image builder to know which base images (FROM) and which
 * context files (COPY, ADD) a build reads, and for the images' tests to check what an image declares (ENV, USER,
 * WORKDIR, EXPOSE, CMD, ENTRYPOINT). It interprets nothing: buildah builds the Dockerfile (scripts/images/build.ts).
 */

export type Instruction =
    | { readonly kind: "FROM"; readonly image: string; readonly stage?: string; readonly line: number }
    | { readonly kind: "ENV"; readonly vars: ReadonlyArray<readonly [string, string]>; readonly line: number }
    /** `from` is set for COPY --from=STAGE, whose sources are not in the build context. */
    | {
          readonly kind: "COPY" | "ADD";
          readonly sources: readonly string[];
          readonly dest: string;
          readonly from?: string;
          readonly line: number;
      }
    | { readonly kind: "USER"; readonly user: string; readonly line: number }
    | { readonly kind: "WORKDIR"; readonly path: string; readonly line: number }
    | { readonly kind: "EXPOSE"; readonly ports: readonly string[]; readonly line: number }
    /** The shell form becomes ["/bin/sh", "-c", TEXT], as Docker stores it. */
    | { readonly kind: "CMD" | "ENTRYPOINT"; readonly argv: readonly string[]; readonly line: number }
    | { readonly kind: OtherKind; readonly args: string; readonly line: number };

type OtherKind = "ARG" | "RUN" | "LABEL" | "STOPSIGNAL" | "HEALTHCHECK" | "SHELL" | "VOLUME" | "ONBUILD" | "MAINTAINER";
const OTHER: readonly string[] = [
    "ARG",
    "RUN",
    "LABEL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "VOLUME",
    "ONBUILD",
    "MAINTAINER",
];

export class DockerfileError extends Error {
    constructor(file: string, line: number, message: string) {
        super(`${file}:${line}: ${message}`);
        this.name = "DockerfileError";
    }
}

/** Joins continuation lines and drops comments (also inside a continuation, as Docker does): [line, text] pairs. */
function logicalLines(text: string): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    let current = "";
    let start = 0;
    text.split("\n").forEach((raw, i) => {
        const line = raw.replace(/\r$/, "");
        if (/^\s*#/.test(line) || (current === "" && line.trim() === "")) return;
        if (current === "") start = i + 1;
        if (/\\\s*$/.test(line)) {
            current += `${line.replace(/\\\s*$/, "")} `;
        } else {
            out.push([start, (current + line).trim()]);
            current = "";
        }
    });
    if (current.trim() !== "") out.push([start, current.trim()]);
    return out;
}

/** `K=V K2="V 2"` pairs, or the legacy `ENV K V`. */
function keyValues(file: string, line: number, rest: string): Array<[string, string]> {
    if (!/^[^=\s]+=/.test(rest)) {
        const m = /^(\S+)\s+(.*)$/.exec(rest);
        if (!m) throw new DockerfileError(file, line, `expected KEY=VALUE or KEY VALUE, got "${rest}"`);
        return [[m[1], m[2]]];
    }
    const pairs: Array<[string, string]> = [];
    const re = /\s*([^=\s]+)=("((?:[^"\\]|\\.)*)"|(\S*))/y;
    let pos = 0;
    while (pos < rest.length) {
        const m = re.exec(rest);
        if (m === null) break;
        pairs.push([m[1], m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[4]]);
        pos = re.lastIndex;
    }
    if (rest.slice(pos).trim() !== "") {
        throw new DockerfileError(file, line, `cannot read "${rest.slice(pos).trim()}"; expected KEY=VALUE pairs`);
    }
    return pairs;
}

function argv(rest: string): string[] {
    if (rest.startsWith("[")) {
        try {
            const parsed: unknown = JSON.parse(rest);
            if (Array.isArray(parsed) && parsed.every((a) => typeof a === "string")) return parsed;
        } catch {
            // Not JSON: Docker then takes it as the shell form.
        }
    }
    return ["/bin/sh", "-c", rest];
}

/** The instructions of a Dockerfile, in order; `file` names it in error messages. */
export function parseDockerfile(text: string, file = "Dockerfile"): Instruction[] {
    const out: Instruction[] = [];
    for (const [line, content] of logicalLines(text)) {
        const m = /^([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(content);
        if (!m) throw new DockerfileError(file, line, `cannot read "${content}"`);
        const kind = m[1].toUpperCase();
        const rest = (m[2] ?? "").trim();
        const words = rest.split(/\s+/).filter((w) => w !== "");
        const flags = words.filter((w) => w.startsWith("--"));
        const operands = words.filter((w) => !w.startsWith("--"));
        switch (kind) {
            case "FROM": {
                const as = operands.findIndex((w) => w.toUpperCase() === "AS");
                out.push({ kind, image: operands[0] ?? "", stage: as > 0 ? operands[as + 1] : undefined, line });
                break;
            }
            case "ENV":
                out.push({ kind, vars: keyValues(file, line, rest), line });
                break;
            case "COPY":
            case "ADD": {
                if (rest.startsWith("[")) {
                    throw new DockerfileError(
                        file,
                        line,
                        `${kind} in the JSON form is not read here; use ${kind} SRC... DEST`,
                    );
                }
                if (operands.length < 2)
                    throw new DockerfileError(file, line, `${kind} needs at least one source and a destination`);
                const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
                out.push({ kind, sources: operands.slice(0, -1), dest: operands[operands.length - 1], from, line });
                break;
            }
            case "USER":
                out.push({ kind, user: rest, line });
                break;
            case "WORKDIR":
                out.push({ kind, path: rest, line });
                break;
            case "EXPOSE":
                out.push({ kind, ports: words, line });
                break;
            case "CMD":
            case "ENTRYPOINT":
                out.push({ kind, argv: argv(rest), line });
                break;
            default:
                if (!OTHER.includes(kind)) throw new DockerfileError(file, line, `unknown instruction ${kind}`);
                out.push({ kind: kind as OtherKind, args: rest, line });
        }
    }
    if (!out.some((i) => i.kind === "FROM")) throw new DockerfileError(file, 1, "no FROM instruction");
    return out;
}
