/**
 * Builds the project's images without Docker or a registry: each image's own Dockerfile (the one CI builds and
 * pushes with docker buildx) is run here in a chroot, on a Debian bookworm root filesystem made by debootstrap
 * from this machine's mirror, and written as a one-layer OCI archive that `ctr images import` loads into the
 * local cluster's containerd. Nothing is pulled.
 *
 *   scripts/images.sh build [NAME...]                 build what is missing (default: every image), print a summary
 *   scripts/images.sh import --address SOCK [NAME...] build what is missing and import it into containerd, tagged
 *                                                     with the references the local stack uses
 *   scripts/images.sh list                            names, Dockerfiles and references
 *
 * Cached by content: an image's key hashes its Dockerfile, build args, the files its COPY instructions read and
 * the base root filesystem's key, so a second run with nothing changed takes seconds. Cache:
 * ${STATEFUL_FLASK_IMAGE_CACHE:-~/.cache/stateful-flask-images}.
 *
 * How the local image differs from the one CI pushes (docs/images.md): the base is debootstrap's minbase
 * bookworm from this machine's mirror instead of the debian:bookworm-slim image; the packages each Dockerfile
 * installs are pinned to exact versions, so both get the same ones.
 */
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { DockerfileError, Instruction, expand, parseDockerfile } from "./dockerfile";
import { RuntimeConfig, writeOciArchive } from "./oci";

const ROOT = path.resolve(__dirname, "..", "..");
/** Bumped when the builder's output format changes, so old archives are not reused. */
const BUILDER_VERSION = "1";
export const CACHE = process.env.STATEFUL_FLASK_IMAGE_CACHE ?? path.join(os.homedir(), ".cache", "stateful-flask-images");
const SUITE = "bookworm";

// ------------------------------------------------------------------------------------------------ logging
const t0 = Date.now();
function log(msg: string): void {
    process.stderr.write(`[images ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}
const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

function run(cmd: string, args: string[], opts: { logFile?: string; input?: string } = {}): void {
    const r = spawnSync(cmd, args, {
        stdio: [opts.input === undefined ? "ignore" : "pipe", opts.logFile ? fs.openSync(opts.logFile, "a") : "pipe", opts.logFile ? fs.openSync(opts.logFile, "a") : "pipe"],
        input: opts.input,
        maxBuffer: 256 * 1024 * 1024,
    });
    if (r.status !== 0) {
        const tail = opts.logFile ? fs.readFileSync(opts.logFile, "utf8").split("\n").slice(-25).join("\n") : `${r.stdout ?? ""}${r.stderr ?? ""}`;
        throw new Error(`${cmd} ${args.join(" ").slice(0, 300)} failed (${r.status ?? r.signal}):\n${tail}`);
    }
}

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
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as { config: Record<string, string> };
    const api = doc.config["stateful-flask:apiImage"];
    const postgres = doc.config["stateful-flask:postgresImage"];
    if (!api || !postgres) {
        throw new Error("Pulumi.local.yaml must set stateful-flask:apiImage and stateful-flask:postgresImage (the images this builder tags)");
    }
    return { api, postgres };
}

export interface ImageSpec {
    readonly name: string;
    readonly dockerfile: string;
    /** The build context; built lazily (some contexts are assembled from build outputs). */
    readonly context: () => string;
    readonly refs: readonly string[];
    readonly buildArgs?: Readonly<Record<string, string>>;
}

function toolchainBin(component: string): string {
    return execFileSync(path.join(ROOT, "scripts", "toolchain.sh"), ["bin", component], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
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
    const version = /K8S_VERSION="\$\{K8S_VERSION:-(v[0-9.]+)\}"/.exec(fs.readFileSync(path.join(ROOT, "scripts", "toolchain.sh"), "utf8"))?.[1];
    if (!version) throw new Error("cannot read K8S_VERSION from scripts/toolchain.sh");
    const info = JSON.parse(execFileSync("go", ["mod", "download", "-json", `k8s.io/kubernetes@${version}`], { encoding: "utf8", cwd: os.tmpdir() }));
    const source = path.join(info.Dir, "build", "pause", "linux", "pause.c");
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(source).mtimeMs) {
        fs.mkdirSync(path.dirname(out), { recursive: true });
        run("gcc", ["-Os", "-static", "-Wall", "-Werror", `-DVERSION=${version}`, "-o", out, source]);
    }
    return out;
}

export function imageSpecs(): ImageSpec[] {
    const stack = localStackImages();
    const local = path.join(ROOT, "scripts", "local-cluster", "images");
    return [
        { name: "api", dockerfile: path.join(ROOT, "images", "api", "Dockerfile"), context: () => path.join(ROOT, "images", "api"), refs: [stack.api], buildArgs: debianMirrors() },
        { name: "postgres", dockerfile: path.join(ROOT, "images", "postgres", "Dockerfile"), context: () => path.join(ROOT, "images", "postgres"), refs: [stack.postgres], buildArgs: debianMirrors() },
        { name: "pause", dockerfile: path.join(local, "pause", "Dockerfile"), context: assembledContext("pause", path.join(local, "pause"), { pause: buildPause }), refs: ["stateful-flask.local/pause:3.10"] },
        {
            name: "coredns", dockerfile: path.join(local, "coredns", "Dockerfile"),
            context: assembledContext("coredns", path.join(local, "coredns"), { coredns: () => path.join(toolchainBin("coredns"), "coredns") }),
            refs: ["stateful-flask.local/coredns:1.14.7"],
        },
        {
            name: "traefik", dockerfile: path.join(local, "traefik", "Dockerfile"),
            context: assembledContext("traefik", path.join(local, "traefik"), { traefik: () => path.join(toolchainBin("traefik"), "traefik") }),
            refs: ["stateful-flask.local/traefik:3.6.12"],
        },
        {
            name: "versitygw", dockerfile: path.join(local, "versitygw", "Dockerfile"),
            context: assembledContext("versitygw", path.join(local, "versitygw"), { versitygw: () => path.join(toolchainBin("versitygw"), "versitygw") }),
            refs: ["stateful-flask.local/versitygw:1.8.0"],
        },
    ];
}

// ---------------------------------------------------------------------------------------- base rootfs

function hash(...parts: Array<string | Buffer>): string {
    const h = crypto.createHash("sha256");
    for (const p of parts) {
        h.update(typeof p === "string" ? Buffer.from(p) : p);
        h.update("\0");
    }
    return h.digest("hex");
}

/** debootstrap's minbase bookworm from the mirror, as a tar; the stand-in for debian:bookworm-slim. */
function baseRootfs(mirror: string): { tar: string; key: string } {
    const key = hash(BUILDER_VERSION, "debootstrap", SUITE, "minbase", mirror).slice(0, 16);
    const tar = path.join(CACHE, "base", `${SUITE}-minbase-${key}.tar`);
    if (fs.existsSync(tar)) {
        return { tar, key };
    }
    if (!fs.existsSync("/usr/sbin/debootstrap")) {
        throw new Error("debootstrap is missing: apt-get install -y debootstrap (npm run setup installs it)");
    }
    const dir = fs.mkdtempSync(path.join(CACHE, "tmp", "base-"));
    const logFile = `${dir}.log`;
    const start = Date.now();
    log(`base: debootstrap --variant=minbase ${SUITE} from ${mirror} (about 3 minutes, log ${logFile})`);
    try {
        run("debootstrap", ["--variant=minbase", SUITE, dir, mirror], { logFile });
        // What debian:bookworm-slim also drops; the runtime provides /dev, /proc, /sys and resolv.conf.
        for (const sub of ["var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*", "dev/*", "run/*", "tmp/*"]) {
            execFileSync("sh", ["-c", `rm -rf ${dir}/${sub}`]);
        }
        fs.mkdirSync(path.dirname(tar), { recursive: true });
        run("tar", ["--numeric-owner", "--sort=name", "-C", dir, "-cf", `${tar}.tmp`, "."]);
        fs.renameSync(`${tar}.tmp`, tar);
        log(`base: done in ${secs(start)} (${(fs.statSync(tar).size / 1e6).toFixed(0)} MB)`);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(logFile, { force: true });
    }
    return { tar, key };
}

// --------------------------------------------------------------------------------------------- building

interface BuildState {
    env: Record<string, string>;
    args: Record<string, string>;
    workdir: string;
    user?: string;
    runtime: { Cmd?: string[]; Entrypoint?: string[]; ExposedPorts: Record<string, Record<string, never>>; Labels: Record<string, string>; StopSignal?: string };
}

/** Files a COPY reads, relative to the context, recursively, sorted. */
function copiedFiles(context: string, sources: readonly string[]): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
        const abs = path.join(context, rel);
        const st = fs.lstatSync(abs);
        if (st.isDirectory()) {
            for (const e of fs.readdirSync(abs).sort()) {
                if (e === "__pycache__" || e === "node_modules") continue;
                walk(path.join(rel, e));
            }
        } else {
            out.push(rel);
        }
    };
    for (const s of sources) {
        if (!fs.existsSync(path.join(context, s))) {
            throw new Error(`COPY source ${s} not found in ${context}`);
        }
        walk(path.normalize(s));
    }
    return out;
}

/** The content key of an image: everything that can change its bytes. */
function imageKey(spec: ImageSpec, context: string, instructions: Instruction[], baseKey: string): string {
    const parts: Array<string | Buffer> = [BUILDER_VERSION, baseKey, fs.readFileSync(spec.dockerfile), JSON.stringify(spec.buildArgs ?? {})];
    for (const i of instructions) {
        if (i.kind === "COPY") {
            for (const f of copiedFiles(context, i.sources)) {
                const abs = path.join(context, f);
                parts.push(f, String(fs.statSync(abs).mode & 0o777), fs.readFileSync(abs));
            }
        }
    }
    return hash(...parts).slice(0, 16);
}

/** Runs a shell command inside `root`: private mount and PID namespaces, so /dev and /proc unmount on exit. */
function runInRoot(root: string, command: string, env: Record<string, string>, user: string | undefined, logFile: string): void {
    const userspec = user ? `--userspec=${user.includes(":") ? user : `${user}:${user}`}` : "";
    const inner = 'set -e; root=$1; shift; mount --rbind /dev "$root/dev"; mount -t proc proc "$root/proc"; exec chroot ' +
        `${userspec} "$root" /usr/bin/env -i "$@"`;
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    run("unshare", ["--mount", "--pid", "--fork", "sh", "-c", inner, "sh", root, ...envArgs, "/bin/sh", "-c", command], { logFile });
}

function copyInto(root: string, context: string, i: Extract<Instruction, { kind: "COPY" }>, state: BuildState): void {
    const vars = { ...state.args, ...state.env };
    const destRaw = expand(i.dest, vars);
    const dest = path.posix.isAbsolute(destRaw) ? destRaw : path.posix.join(state.workdir, destRaw);
    const many = i.sources.length > 1 || destRaw.endsWith("/");
    for (const s of i.sources) {
        const src = path.join(context, s);
        const target = path.join(root, dest);
        const isDir = fs.statSync(src).isDirectory();
        if (isDir) {
            // Docker copies a directory's contents, not the directory itself.
            fs.mkdirSync(target, { recursive: true });
            run("cp", ["-a", "--no-preserve=ownership", `${src}/.`, target]);
            run("sh", ["-c", `find "$1" -name __pycache__ -prune -exec rm -rf {} +`, "sh", target]);
        } else {
            const file = many ? path.join(target, path.basename(s)) : target;
            fs.mkdirSync(path.dirname(file), { recursive: true });
            run("cp", ["-a", "--no-preserve=ownership", src, file]);
        }
        const copied = isDir ? target : many ? path.join(target, path.basename(s)) : target;
        run("chown", ["-R", i.chown ? resolveOwner(root, i.chown) : "0:0", copied]);
        if (i.chmod) run("chmod", ["-R", i.chmod, copied]);
    }
}

/** user[:group] as numeric ids, looked up in the image's own passwd/group files. */
function resolveOwner(root: string, owner: string): string {
    const [u, g] = owner.split(":");
    const lookup = (file: string, name: string) => {
        if (/^\d+$/.test(name)) return name;
        const line = fs.readFileSync(path.join(root, "etc", file), "utf8").split("\n").find(l => l.split(":")[0] === name);
        if (!line) throw new Error(`--chown=${owner}: ${name} not found in the image's /etc/${file}`);
        return line.split(":")[2];
    };
    return `${lookup("passwd", u)}:${lookup("group", g ?? u)}`;
}

export interface BuiltImage {
    readonly name: string;
    readonly archive: string;
    /** The manifest digest; what containerd reports for the imported image. */
    readonly digest: string;
    /** The name inside the archive: stateful-flask.local/<name>:<key>. */
    readonly archiveRef: string;
    readonly refs: readonly string[];
    readonly cached: boolean;
    readonly seconds: number;
}

/** Builds `spec` unless an archive with the same content key exists. */
export function buildImage(spec: ImageSpec): BuiltImage {
    const start = Date.now();
    fs.mkdirSync(path.join(CACHE, "tmp"), { recursive: true });
    const dockerfileText = fs.readFileSync(spec.dockerfile, "utf8");
    const instructions = parseDockerfile(dockerfileText, path.relative(ROOT, spec.dockerfile));
    const from = instructions.find(i => i.kind === "FROM") as Extract<Instruction, { kind: "FROM" }>;
    const context = spec.context();
    let base: { tar: string; key: string } | undefined;
    if (from.image === "debian:bookworm-slim") {
        base = baseRootfs(spec.buildArgs?.DEBIAN_MIRROR ?? debianMirrors().DEBIAN_MIRROR);
    } else if (from.image !== "scratch") {
        throw new DockerfileError(path.relative(ROOT, spec.dockerfile), from.line,
            `FROM ${from.image}: the local builder knows debian:bookworm-slim (built with debootstrap) and scratch`);
    }
    const key = imageKey(spec, context, instructions, base?.key ?? "scratch");
    const archiveRef = `stateful-flask.local/${spec.name}:${key}`;
    const archive = path.join(CACHE, spec.name, `${key}.tar`);
    const meta = `${archive}.json`;
    if (fs.existsSync(archive) && fs.existsSync(meta)) {
        const digest = JSON.parse(fs.readFileSync(meta, "utf8")).digest as string;
        log(`${spec.name}: cached (${key})`);
        return { name: spec.name, archive, digest, archiveRef, refs: spec.refs, cached: true, seconds: (Date.now() - start) / 1000 };
    }

    const work = fs.mkdtempSync(path.join(CACHE, "tmp", `${spec.name}-`));
    const root = path.join(work, "rootfs");
    const logFile = path.join(CACHE, spec.name, `${key}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    fs.writeFileSync(logFile, "");
    try {
        // Step cache, like Docker's layer cache: the root filesystem after each RUN is kept under a key chained
        // from the base and every instruction before it (with the content of the files COPY read), so a change
        // to the files copied after the package install does not install the packages again.
        const chain: string[] = [];
        let link = base?.key ?? "scratch";
        for (const i of instructions) {
            const copied = i.kind === "COPY" ? copiedFiles(context, i.sources).map(f => hash(f, fs.readFileSync(path.join(context, f)), String(fs.statSync(path.join(context, f)).mode & 0o777))).join(",") : "";
            const arg = i.kind === "ARG" ? `=${spec.buildArgs?.[i.name] ?? i.default ?? ""}` : "";
            link = hash(link, JSON.stringify({ ...i, line: 0 }), copied, arg).slice(0, 16);
            chain.push(link);
        }
        // Shared by every image: the key is the content, so a variant (another tag, one more file after the
        // package install) reuses its base's snapshot.
        const stepsDir = path.join(CACHE, "steps");
        const snapshot = (n: number) => path.join(stepsDir, `${chain[n]}.tar`);
        let resumeAfter = -1;
        instructions.forEach((i, n) => {
            if (i.kind === "RUN" && fs.existsSync(snapshot(n))) resumeAfter = n;
        });

        fs.mkdirSync(root, { recursive: true });
        if (resumeAfter >= 0) {
            const now = new Date();
            fs.utimesSync(snapshot(resumeAfter), now, now);
            run("tar", ["--numeric-owner", "-xf", snapshot(resumeAfter), "-C", root]);
            log(`${spec.name}: resuming after step ${resumeAfter + 1} from the step cache`);
        } else if (base) {
            run("tar", ["--numeric-owner", "-xf", base.tar, "-C", root]);
        }
        if (base) {
            fs.copyFileSync("/etc/resolv.conf", path.join(root, "etc", "resolv.conf"));
            // No daemon starts inside the build.
            fs.writeFileSync(path.join(root, "usr", "sbin", "policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
        }
        const state: BuildState = {
            env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
            args: {},
            workdir: "/",
            runtime: { ExposedPorts: {}, Labels: {} },
        };
        const history: string[] = [];
        const steps = instructions.length;
        instructions.forEach((i, n) => {
            const stepStart = Date.now();
            const label = `${spec.name}: step ${n + 1}/${steps}`;
            const vars = () => ({ ...state.args, ...state.env });
            const cached = n <= resumeAfter;
            switch (i.kind) {
                case "FROM":
                    log(`${label} FROM ${i.image}${base ? ` (debootstrap base ${base.key})` : ""}`);
                    break;
                case "ARG":
                    state.args[i.name] = spec.buildArgs?.[i.name] ?? i.default ?? "";
                    break;
                case "ENV":
                    for (const [k, v] of i.vars) state.env[k] = expand(v, vars());
                    break;
                case "LABEL":
                    for (const [k, v] of i.labels) state.runtime.Labels[k] = expand(v, vars());
                    break;
                case "WORKDIR":
                    state.workdir = expand(i.path, vars());
                    fs.mkdirSync(path.join(root, state.workdir), { recursive: true });
                    break;
                case "USER":
                    state.user = expand(i.user, vars());
                    break;
                case "EXPOSE":
                    for (const p of i.ports) state.runtime.ExposedPorts[p.includes("/") ? p : `${p}/tcp`] = {};
                    break;
                case "CMD":
                    state.runtime.Cmd = [...i.argv];
                    break;
                case "ENTRYPOINT":
                    state.runtime.Entrypoint = [...i.argv];
                    break;
                case "STOPSIGNAL":
                    state.runtime.StopSignal = i.signal;
                    break;
                case "COPY":
                    if (cached) break;
                    copyInto(root, context, i, state);
                    log(`${label} COPY ${i.sources.join(" ")} ${i.dest}`);
                    break;
                case "RUN": {
                    if (cached) break;
                    if (!base) throw new DockerfileError(path.relative(ROOT, spec.dockerfile), i.line, "RUN needs a shell: FROM scratch has none");
                    log(`${label} RUN ${i.command.slice(0, 100)}${i.command.length > 100 ? "…" : ""}`);
                    fs.appendFileSync(logFile, `\n### step ${n + 1}: RUN ${i.command}\n`);
                    const env = { ...state.args, ...state.env, DEBIAN_FRONTEND: "noninteractive", HOME: "/root" };
                    // WORKDIR applies to RUN.
                    runInRoot(root, `cd '${state.workdir}' && ${i.command}`, env, state.user, logFile);
                    // Snapshots unused for two weeks are stale.
                    fs.mkdirSync(stepsDir, { recursive: true });
                    for (const f of fs.readdirSync(stepsDir)) {
                        const st = fs.statSync(path.join(stepsDir, f));
                        if (st.isFile() && Date.now() - st.mtimeMs > 14 * 24 * 3600 * 1000) fs.rmSync(path.join(stepsDir, f), { force: true });
                    }
                    run("tar", ["--numeric-owner", "-C", root, "-cf", snapshot(n), "."]);
                    log(`${label} done in ${secs(stepStart)}`);
                    break;
                }
            }
            history.push(`${i.kind} (line ${i.line})`);
        });

        if (base) {
            fs.rmSync(path.join(root, "usr", "sbin", "policy-rc.d"), { force: true });
            fs.writeFileSync(path.join(root, "etc", "resolv.conf"), "");
            execFileSync("sh", ["-c", `rm -rf ${root}/proc/* ${root}/dev/* ${root}/run/* ${root}/tmp/* ${root}/tmp/.[!.]* ${root}/var/log/apt/*`]);
        }
        const layer = path.join(work, "layer.tar");
        run("tar", ["--numeric-owner", "--sort=name", "-C", root, "-cf", layer, "."]);
        const runtime: RuntimeConfig = {
            Env: Object.entries(state.env).map(([k, v]) => `${k}=${v}`),
            ...(state.runtime.Cmd ? { Cmd: state.runtime.Cmd } : {}),
            ...(state.runtime.Entrypoint ? { Entrypoint: state.runtime.Entrypoint } : {}),
            ...(state.user ? { User: state.user } : {}),
            WorkingDir: state.workdir,
            ...(Object.keys(state.runtime.ExposedPorts).length ? { ExposedPorts: state.runtime.ExposedPorts } : {}),
            Labels: { ...state.runtime.Labels, "org.opencontainers.image.title": spec.name, "stateful-flask.build-key": key },
            ...(state.runtime.StopSignal ? { StopSignal: state.runtime.StopSignal } : {}),
        };
        const digest = writeOciArchive(`${archive}`, layer, runtime, history, archiveRef);
        fs.writeFileSync(meta, JSON.stringify({ digest, archiveRef, key, builtAt: new Date().toISOString(), seconds: (Date.now() - start) / 1000 }));
        log(`${spec.name}: built in ${secs(start)}, ${(fs.statSync(archive).size / 1e6).toFixed(0)} MB, ${digest.slice(0, 19)}`);
        // Older archives of this image are dead weight.
        for (const f of fs.readdirSync(path.dirname(archive))) {
            if (!f.startsWith(key)) fs.rmSync(path.join(path.dirname(archive), f), { force: true });
        }
        return { name: spec.name, archive, digest, archiveRef, refs: spec.refs, cached: false, seconds: (Date.now() - start) / 1000 };
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

// ------------------------------------------------------------------------------------------- containerd

function ctr(address: string, args: string[]): string {
    return execFileSync("ctr", ["--address", address, "--namespace", "k8s.io", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
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
            throw new Error(`${image.name}: containerd does not list ${image.archiveRef} at ${image.digest} after the import`);
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

function select(names: string[]): ImageSpec[] {
    const specs = imageSpecs();
    if (names.length === 0) return specs;
    return names.map(n => {
        const s = specs.find(x => x.name === n);
        if (!s) throw new Error(`unknown image "${n}"; known: ${specs.map(x => x.name).join(", ")}`);
        return s;
    });
}

function main(argv: string[]): void {
    const [cmd = "build", ...rest] = argv;
    if (process.getuid?.() !== 0 && cmd !== "list") {
        throw new Error("building images needs root (chroot, mount namespaces)");
    }
    if (cmd === "list") {
        for (const s of imageSpecs()) process.stdout.write(`${s.name}\t${path.relative(ROOT, s.dockerfile)}\t${s.refs.join(",")}\n`);
        return;
    }
    let address: string | undefined;
    const names: string[] = [];
    for (let i = 0; i < rest.length; i++) {
        if (rest[i] === "--address") address = rest[++i];
        else names.push(rest[i]);
    }
    if (cmd === "import" && !address) throw new Error("import needs --address <containerd socket>");
    if (cmd !== "build" && cmd !== "import") throw new Error(`unknown command "${cmd}"; expected build, import or list`);
    const built = select(names).map(buildImage);
    if (address) built.forEach(b => importImage(address as string, b));
    for (const b of built) {
        process.stdout.write(`${b.name}\t${b.cached ? "cached" : `built in ${b.seconds.toFixed(0)}s`}\t${b.digest}\t${b.refs.join(",")}\n`);
    }
    log(`done in ${secs(t0)}`);
}

if (require.main === module) {
    try {
        main(process.argv.slice(2));
    } catch (err) {
        log(`error: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
    }
}
