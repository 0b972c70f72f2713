/**
 * Builds the project's images here, where there is no Docker engine and no registry: each image's own Dockerfile
 * (the one CI builds and pushes with docker buildx) is built by buildah (scripts/images/buildah.ts) on a Debian
 * base made by debootstrap, written as an OCI archive, and imported with `ctr images import` into the local
 * cluster's containerd. Nothing is pulled.
 *
 *   scripts/images.sh build [NAME...]                 build what is missing (default: every image), print a summary
 *   scripts/images.sh import --address SOCK [NAME...] build what is missing and import it into containerd, tagged
 *                                                     with the references the local stack uses
 *   scripts/images.sh list                            names, Dockerfiles and references
 *   --rebuild (with build or import)                  build even when cached, every step again (no layer cache)
 *   scripts/images.sh buildah ARGS...                 buildah on the cache's store, e.g. `images` or `inspect REF`
 *
 * Cached by content: an image's key hashes its Dockerfile, build args, the files its COPY/ADD instructions read
 * and its base's key, so a second run with nothing changed takes seconds; when the key changed, buildah's layer
 * cache reuses the steps before the first one whose input changed. Cache (archives, the buildah store, the
 * bases): ${STATEFUL_FLASK_IMAGE_CACHE:-~/.cache/stateful-flask-images}.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { BuildahStore, SUITES, type Suite, log, secs, sha256 } from "./buildah";
import { DockerfileError, type Instruction, parseDockerfile } from "./dockerfile";

const ROOT = path.resolve(__dirname, "..", "..");
/** Bumped when what the builder writes changes, so archives of the old builder are not reused. */
const BUILDER_VERSION = "2-buildah";
export const CACHE =
    process.env.STATEFUL_FLASK_IMAGE_CACHE ?? path.join(os.homedir(), ".cache", "stateful-flask-images");
/** The buildah store of the image cache. */
export const imageStore = () => new BuildahStore(path.join(CACHE, "buildah"));

// ------------------------------------------------------------------------------------------- the images

/** Debian mirrors the images install from: this machine's, which is what the tests' packages come from. */
export function debianMirrors(): { DEBIAN_MIRROR: string; DEBIAN_SECURITY_MIRROR: string } {
    return {
        DEBIAN_MIRROR: process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian",
        DEBIAN_SECURITY_MIRROR: process.env.DEBIAN_SECURITY_MIRROR ?? "http://deb.debian.org/debian-security",
    };
}

/** The local stack's config (Pulumi.local.yaml): the image references the stack deploys. */
export function localStackImages(): { api: string; postgres: string } {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as {
        config: Record<string, string>;
    };
    const api = doc.config["stateful-flask:apiImage"];
    const postgres = doc.config["stateful-flask:postgresImage"];
    if (!api || !postgres) {
        throw new Error(
            "Pulumi.local.yaml must set stateful-flask:apiImage and stateful-flask:postgresImage (the images this builder tags)",
        );
    }
    return { api, postgres };
}

export interface ImageSpec {
    /** Lower-case letters, digits and dashes: it names the archive and the image in the store. */
    readonly name: string;
    readonly dockerfile: string;
    /** The build context; built lazily (some contexts are assembled from build outputs). */
    readonly context: () => string;
    readonly refs: readonly string[];
    readonly buildArgs?: Readonly<Record<string, string>>;
}

function toolchainBin(component: string): string {
    return execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin", component], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
    }).trim();
}

/** A context dir holding `files` (name -> source path) and the Dockerfile next to them. */
function assembledContext(name: string, dockerfileDir: string, files: Record<string, () => string>): () => string {
    return () => {
        const dir = path.join(CACHE, "contexts", name);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.mkdirSync(dir, { recursive: true });
        for (const [file, source] of Object.entries(files)) {
            fs.copyFileSync(source(), path.join(dir, file));
            fs.chmodSync(path.join(dir, file), 0o755);
        }
        fs.copyFileSync(path.join(dockerfileDir, "Dockerfile"), path.join(dir, "Dockerfile"));
        return dir;
    };
}

/** pause, built from the Kubernetes release's own pause.c (in the Go module cache the toolchain filled). */
function buildPause(): string {
    const out = path.join(CACHE, "bin", "pause");
    const version = /K8S_VERSION="\$\{K8S_VERSION:-(v[0-9.]+)\}"/.exec(
        fs.readFileSync(path.join(ROOT, "scripts", "toolchain.sh"), "utf8"),
    )?.[1];
    if (!version) throw new Error("cannot read K8S_VERSION from scripts/toolchain.sh");
    const info = JSON.parse(
        execFileSync("go", ["mod", "download", "-json", `k8s.io/kubernetes@${version}`], {
            encoding: "utf8",
            cwd: os.tmpdir(),
        }),
    );
    const source = path.join(info.Dir, "build", "pause", "linux", "pause.c");
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(source).mtimeMs) {
        fs.mkdirSync(path.dirname(out), { recursive: true });
        execFileSync("gcc", ["-Os", "-static", "-Wall", "-Werror", `-DVERSION=${version}`, "-o", out, source], {
            stdio: ["ignore", "pipe", "pipe"],
        });
    }
    return out;
}

export function imageSpecs(): ImageSpec[] {
    const stack = localStackImages();
    const local = path.join(ROOT, "scripts", "local-cluster", "images");
    const binary = (name: string, component: string, ref: string): ImageSpec => ({
        name,
        dockerfile: path.join(local, name, "Dockerfile"),
        refs: [ref],
        context: assembledContext(name, path.join(local, name), {
            [name]: () => path.join(toolchainBin(component), name),
        }),
    });
    return [
        {
            name: "api",
            dockerfile: path.join(ROOT, "images", "api", "Dockerfile"),
            context: () => path.join(ROOT, "images", "api"),
            refs: [stack.api],
            buildArgs: debianMirrors(),
        },
        {
            name: "postgres",
            dockerfile: path.join(ROOT, "images", "postgres", "Dockerfile"),
            context: () => path.join(ROOT, "images", "postgres"),
            refs: [stack.postgres],
            buildArgs: debianMirrors(),
        },
        {
            name: "pause",
            dockerfile: path.join(local, "pause", "Dockerfile"),
            context: assembledContext("pause", path.join(local, "pause"), { pause: buildPause }),
            refs: ["stateful-flask.local/pause:3.10"],
        },
        binary("coredns", "coredns", "stateful-flask.local/coredns:1.14.7"),
        binary("traefik", "traefik", "stateful-flask.local/traefik:3.6.12"),
        binary("versitygw", "versitygw", "stateful-flask.local/versitygw:1.8.0"),
    ];
}

/** The specs of `names` (all when empty); an unknown name is an error listing the known ones. */
export function selectImages(names: readonly string[]): ImageSpec[] {
    const specs = imageSpecs();
    if (names.length === 0) return specs;
    return names.map((n) => {
        const s = specs.find((x) => x.name === n);
        if (!s) throw new Error(`unknown image "${n}"; known: ${specs.map((x) => x.name).join(", ")}`);
        return s;
    });
}

// --------------------------------------------------------------------------------------- the build inputs

/** The Debian suites a Dockerfile's FROM lines need (FROM scratch and earlier stages need none). */
function baseSuites(instructions: readonly Instruction[], file: string): Suite[] {
    const suites = new Set<Suite>();
    const stages = new Set<string>();
    for (const i of instructions) {
        if (i.kind !== "FROM") continue;
        const suite = /^debian:([a-z]+)-slim$/.exec(i.image)?.[1];
        if (suite !== undefined && (SUITES as readonly string[]).includes(suite)) {
            suites.add(suite as Suite);
        } else if (i.image !== "scratch" && !stages.has(i.image)) {
            throw new DockerfileError(
                file,
                i.line,
                `FROM ${i.image}: nothing is pulled here; the builder provides ` +
                    `${SUITES.map((s) => `debian:${s}-slim`).join(", ")} (made by debootstrap) and scratch`,
            );
        }
        if (i.stage) stages.add(i.stage);
    }
    return [...suites];
}

interface ContextEntry {
    readonly rel: string;
    readonly abs: string;
    readonly stat: fs.Stats;
}

/** Never part of an image: Python's bytecode caches (the tests leave them next to the sources), VCS and npm dirs. */
const IGNORED = (name: string) =>
    name === "__pycache__" || name === "node_modules" || name === ".git" || name.endsWith(".pyc");

/**
 * What of `context` a build reads: the sources of its COPY/ADD instructions (all of the context when one is a
 * glob or "."), walked recursively, sorted, plus the context's ignore file. What the key hashes and what is staged.
 */
function contextEntries(context: string, instructions: readonly Instruction[], file: string): ContextEntry[] {
    const entries = new Map<string, ContextEntry>();
    const walk = (rel: string) => {
        const abs = path.join(context, rel);
        const stat = fs.lstatSync(abs);
        for (let d = path.dirname(rel); d !== "."; d = path.dirname(d)) {
            if (!entries.has(d))
                entries.set(d, { rel: d, abs: path.join(context, d), stat: fs.lstatSync(path.join(context, d)) });
        }
        if (rel !== ".") entries.set(rel, { rel, abs, stat });
        if (stat.isDirectory()) {
            for (const e of fs.readdirSync(abs)) if (!IGNORED(e)) walk(path.join(rel, e));
        }
    };
    for (const i of instructions) {
        if ((i.kind !== "COPY" && i.kind !== "ADD") || i.from !== undefined) continue;
        for (const s of i.sources) {
            if (/^[a-z]+:\/\//.test(s)) continue;
            const rel = /[*?[]/.test(s) ? "." : path.normalize(s).replace(/(.)\/+$/, "$1");
            if (rel.startsWith("..") || path.isAbsolute(rel)) {
                throw new DockerfileError(file, i.line, `${i.kind} source "${s}" is outside the build context`);
            }
            if (!fs.existsSync(path.join(context, rel))) {
                throw new DockerfileError(
                    file,
                    i.line,
                    `${i.kind} source "${s}" does not exist in the build context ${context}`,
                );
            }
            walk(rel);
        }
    }
    for (const f of [".dockerignore", ".containerignore"]) {
        if (fs.existsSync(path.join(context, f))) walk(f);
    }
    return [...entries.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

function entryContent(e: ContextEntry): string | Buffer {
    return e.stat.isSymbolicLink() ? fs.readlinkSync(e.abs) : e.stat.isFile() ? fs.readFileSync(e.abs) : "";
}

/**
 * A copy of the entries with every time at 0: what the build reads is exactly what the key hashed, and files
 * whose times the image keeps (Python's bytecode records its source's) do not depend on the checkout.
 */
function stageContext(entries: readonly ContextEntry[], dir: string): void {
    for (const e of entries) {
        const target = path.join(dir, e.rel);
        if (e.stat.isDirectory()) fs.mkdirSync(target, { recursive: true, mode: e.stat.mode & 0o7777 });
        else if (e.stat.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(e.abs), target);
        else fs.copyFileSync(e.abs, target);
        if (!e.stat.isSymbolicLink()) fs.chmodSync(target, e.stat.mode & 0o7777);
    }
    for (const e of [...entries].reverse()) fs.lutimesSync(path.join(dir, e.rel), 0, 0);
    fs.utimesSync(dir, 0, 0);
}

// --------------------------------------------------------------------------------------------- building

export interface BuiltImage {
    readonly name: string;
    readonly archive: string;
    /** The manifest digest; what containerd reports for the imported image. */
    readonly digest: string;
    /** The name inside the archive and in the buildah store: stateful-flask.local/<name>:<key>. */
    readonly archiveRef: string;
    readonly refs: readonly string[];
    readonly cached: boolean;
    readonly seconds: number;
}

/**
 * Builds `spec` unless an archive with the same content key exists. `rebuild` builds it anyway, every step
 * again (buildah --no-cache): whether the result has the same digest shows whether the build reproduces.
 */
export function buildImage(spec: ImageSpec, opts: { rebuild?: boolean } = {}): BuiltImage {
    const start = Date.now();
    if (!/^[a-z0-9][a-z0-9-]*$/.test(spec.name)) {
        throw new Error(`image name "${spec.name}": expected lower-case letters, digits and dashes`);
    }
    if (!fs.existsSync(spec.dockerfile))
        throw new Error(`${spec.name}: the Dockerfile ${spec.dockerfile} does not exist`);
    const file = path.relative(ROOT, spec.dockerfile).startsWith("..")
        ? spec.dockerfile
        : path.relative(ROOT, spec.dockerfile);
    const dockerfile = fs.readFileSync(spec.dockerfile);
    const instructions = parseDockerfile(dockerfile.toString("utf8"), file);
    const suites = baseSuites(instructions, file);
    const buildArgs = spec.buildArgs ?? {};
    const mirror = buildArgs.DEBIAN_MIRROR ?? debianMirrors().DEBIAN_MIRROR;
    const context = spec.context();
    if (!fs.existsSync(context) || !fs.statSync(context).isDirectory())
        throw new Error(`${spec.name}: the build context ${context} is not a directory`);
    const entries = contextEntries(context, instructions, file);

    const key = sha256(
        BUILDER_VERSION,
        ...suites.map((s) => imageStore().baseKey(s, mirror)),
        dockerfile,
        JSON.stringify(Object.entries(buildArgs).sort()),
        ...entries.flatMap((e) => [e.rel, String(e.stat.mode), entryContent(e)]),
    ).slice(0, 16);
    const archiveRef = `stateful-flask.local/${spec.name}:${key}`;
    const archive = path.join(CACHE, spec.name, `${key}.tar`);
    const meta = `${archive}.json`;
    if (!opts.rebuild && fs.existsSync(archive) && fs.existsSync(meta)) {
        const digest = JSON.parse(fs.readFileSync(meta, "utf8")).digest as string;
        log(`${spec.name}: cached (${key})`);
        return {
            name: spec.name,
            archive,
            digest,
            archiveRef,
            refs: spec.refs,
            cached: true,
            seconds: (Date.now() - start) / 1000,
        };
    }

    const s = imageStore();
    return s.exclusive(() => {
        for (const suite of suites) s.ensureBase(suite, mirror, CACHE);
        fs.mkdirSync(path.join(CACHE, "tmp"), { recursive: true });
        const staged = fs.mkdtempSync(path.join(CACHE, "tmp", `${spec.name}-`));
        const logFile = path.join(CACHE, spec.name, `${key}.log`);
        fs.mkdirSync(path.dirname(logFile), { recursive: true });
        fs.writeFileSync(logFile, "");
        try {
            stageContext(entries, staged);
            log(`${spec.name}: buildah build ${file} (key ${key}, log ${logFile})`);
            const fromCache = s.build({
                label: spec.name,
                dockerfile: spec.dockerfile,
                context: staged,
                tag: archiveRef,
                buildArgs,
                logFile,
                layerCache: !opts.rebuild,
            });
            const digest = s.pushArchive(archiveRef, archive);
            const seconds = (Date.now() - start) / 1000;
            fs.writeFileSync(
                meta,
                JSON.stringify({
                    digest,
                    archiveRef,
                    key,
                    builtAt: new Date().toISOString(),
                    seconds,
                    stepsFromLayerCache: fromCache,
                }),
            );
            log(
                `${spec.name}: built in ${secs(start)} (${fromCache} steps from the layer cache), ` +
                    `${(fs.statSync(archive).size / 1e6).toFixed(0)} MB, ${digest.slice(0, 19)}`,
            );
            // Older archives and images of this name are dead weight; the layers they share with this one stay.
            for (const f of fs.readdirSync(path.dirname(archive))) {
                if (!f.startsWith(key)) fs.rmSync(path.join(path.dirname(archive), f), { force: true });
            }
            s.removeImages(`stateful-flask.local/${spec.name}`, archiveRef);
            return { name: spec.name, archive, digest, archiveRef, refs: spec.refs, cached: false, seconds };
        } finally {
            fs.rmSync(staged, { recursive: true, force: true });
        }
    });
}

// ------------------------------------------------------------------------------------------- containerd

function ctr(address: string, args: string[]): string {
    return execFileSync("ctr", ["--address", address, "--namespace", "k8s.io", ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
    });
}

/** Digests of the images containerd has, by reference. */
function containerdImages(address: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of ctr(address, ["images", "ls"]).split("\n").slice(1)) {
        const f = line.split(/\s+/);
        if (f.length >= 3 && f[2].startsWith("sha256:")) out.set(f[0], f[2]);
    }
    return out;
}

/** Imports `image` into containerd (unless it is there already) and tags it with its references. */
export function importImage(address: string, image: BuiltImage, extraRefs: readonly string[] = []): void {
    const start = Date.now();
    let have = containerdImages(address);
    if (have.get(image.archiveRef) !== image.digest) {
        log(`${image.name}: importing into containerd (${(fs.statSync(image.archive).size / 1e6).toFixed(0)} MB)`);
        ctr(address, ["images", "import", "--digests", image.archive]);
        have = containerdImages(address);
        if (have.get(image.archiveRef) !== image.digest) {
            throw new Error(
                `${image.name}: containerd does not list ${image.archiveRef} at ${image.digest} after the import`,
            );
        }
    }
    for (const ref of [...image.refs, ...extraRefs]) {
        if (have.get(ref) !== image.digest) {
            ctr(address, ["images", "tag", "--force", image.archiveRef, ref]);
        }
    }
    log(`${image.name}: in containerd as ${[...image.refs, ...extraRefs].join(", ")} (${secs(start)})`);
}

// ------------------------------------------------------------------------------------------------- CLI

function main(argv: string[]): void {
    const start = Date.now();
    const [cmd = "build", ...rest] = argv;
    if (cmd === "list") {
        for (const s of imageSpecs())
            process.stdout.write(`${s.name}\t${path.relative(ROOT, s.dockerfile)}\t${s.refs.join(",")}\n`);
        return;
    }
    if (cmd === "buildah") {
        process.stdout.write(imageStore().buildah(rest));
        return;
    }
    if (cmd !== "build" && cmd !== "import")
        throw new Error(`unknown command "${cmd}"; expected build, import, list or buildah`);
    let address: string | undefined;
    let rebuild = false;
    const names: string[] = [];
    for (let i = 0; i < rest.length; i++) {
        if (rest[i] === "--address") address = rest[++i];
        else if (rest[i] === "--rebuild") rebuild = true;
        else if (rest[i].startsWith("-"))
            throw new Error(`unknown option "${rest[i]}"; expected --address SOCK or --rebuild`);
        else names.push(rest[i]);
    }
    if (cmd === "import" && !address) throw new Error("import needs --address <containerd socket>");
    const built = selectImages(names).map((s) => buildImage(s, { rebuild }));
    if (address) for (const b of built) importImage(address, b);
    for (const b of built) {
        process.stdout.write(
            `${b.name}\t${b.cached ? "cached" : `built in ${b.seconds.toFixed(0)}s`}\t${b.digest}\t${b.refs.join(",")}\n`,
        );
    }
    log(`done in ${secs(start)}`);
}

if (require.main === module) {
    try {
        main(process.argv.slice(2));
    } catch (err) {
        log(`error: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
    }
}
