/**
 * buildah (Debian's package), run as root with no daemon and no registry, on a store of its own: overlay storage
 * under the image cache, so the host's default containers storage is never touched. The Debian bases come from
 * debootstrap (debian-base.sh) and are committed as docker.io/library/debian:<suite>-slim, so `FROM
 * debian:<suite>-slim` resolves locally and nothing is pulled (`--pull=never`).
 *
 * One build at a time per store (a lock file): a build that was killed leaves its working container and its
 * mount behind, and the next one removes them, which is only safe when no other build is running.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Debian suites a Dockerfile can start FROM (debian:<suite>-slim). */
export const SUITES = ["bookworm", "trixie"] as const;
export type Suite = (typeof SUITES)[number];

const BASE_SCRIPT = path.join(__dirname, "debian-base.sh");
const t0 = Date.now();

export function log(msg: string): void {
    process.stderr.write(`[images ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

export const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

export function sha256(...parts: Array<string | Buffer>): string {
    const h = crypto.createHash("sha256");
    for (const p of parts) h.update(p).update("\0");
    return h.digest("hex");
}

function sleep(ms: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs a command; on failure the error carries its output (or the end of `logFile`). */
function run(cmd: string, args: readonly string[], opts: { logFile?: string; quiet?: boolean } = {}): string {
    const out = opts.logFile ? fs.openSync(opts.logFile, "a") : "pipe";
    const r = spawnSync(cmd, args, { stdio: ["ignore", out, out], encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (typeof out === "number") fs.closeSync(out);
    if (r.status !== 0) {
        const output = opts.logFile ? fs.readFileSync(opts.logFile, "utf8") : `${r.stdout ?? ""}${r.stderr ?? ""}`;
        const tail = output.trimEnd().split("\n").slice(-25).join("\n");
        throw new Error(
            `${cmd} ${args.join(" ").slice(0, 400)} failed (${r.status ?? r.signal})${opts.logFile ? `, log ${opts.logFile}` : ""}:\n${tail}`,
        );
    }
    return r.stdout ?? "";
}

export class BuildahStore {
    /** Images, layers and the layer cache. */
    readonly root: string;
    /** Runtime state (locks, mount counts): gone with a reboot, as the mounts it counts are. */
    readonly runroot: string;

    constructor(readonly dir: string) {
        this.root = path.join(dir, "root");
        this.runroot = path.join("/run", "stateful-flask-images", sha256(this.root).slice(0, 12));
    }

    /** `buildah` on this store. */
    buildah(args: readonly string[], opts: { logFile?: string } = {}): string {
        return run(
            "buildah",
            ["--root", this.root, "--runroot", this.runroot, "--storage-driver", "overlay", ...args],
            opts,
        );
    }

    /**
     * Runs `fn` holding the store's lock, after removing what a killed build left (working containers, mounts),
     * and checks afterwards that nothing is left: no working container, no mount under the store.
     */
    exclusive<T>(fn: () => T): T {
        for (const [what, path_] of [
            ["buildah", "/usr/bin/buildah"],
            ["debootstrap", "/usr/sbin/debootstrap"],
        ]) {
            if (!fs.existsSync(path_)) {
                throw new Error(
                    `${what} is missing (${path_}): apt-get install -y ${what} (npm run setup installs it, scripts/install-cluster-deps.sh)`,
                );
            }
        }
        if (process.getuid?.() !== 0) {
            throw new Error("building images needs root (buildah with overlay storage and chroot isolation)");
        }
        const unshare = spawnSync("unshare", ["--mount", "true"], { encoding: "utf8" });
        if (unshare.status !== 0) {
            throw new Error(
                `building images needs to mount (overlay storage, chroot isolation), and \`unshare --mount\` fails here: ` +
                    `${(unshare.stderr ?? "").trim() || unshare.error?.message}; in a container, run it privileged`,
            );
        }
        fs.mkdirSync(this.dir, { recursive: true });
        const lock = path.join(this.dir, "lock");
        const waited = Date.now();
        for (let polls = 0; ; polls++) {
            try {
                fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
                break;
            } catch (err) {
                if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
            }
            const holder = Number(fs.readFileSync(lock, "utf8")) || 0;
            if (holder === 0 || holder === process.pid || !alive(holder)) {
                fs.rmSync(lock, { force: true });
                continue;
            }
            if (Date.now() - waited > 30 * 60 * 1000)
                throw new Error(`the image store ${this.dir} is still locked by pid ${holder} after 30 minutes`);
            if (polls % 30 === 0) log(`waiting for pid ${holder}, which is building in ${this.dir}`);
            sleep(1000);
        }
        let result: T;
        try {
            this.removeLeftovers("a build that did not finish");
            result = fn();
        } catch (buildError) {
            // The build's own error is the one to report; a cleanup that fails as well is only logged.
            try {
                this.removeLeftovers("this build");
            } catch (err) {
                log(
                    `cleaning up after the failed build failed too: ${err instanceof Error ? err.message : String(err)}`,
                );
            } finally {
                fs.rmSync(lock, { force: true });
            }
            throw buildError;
        }
        try {
            this.removeLeftovers("this build");
        } finally {
            fs.rmSync(lock, { force: true });
        }
        return result;
    }

    /** Mount points under the store (the overlay driver keeps a bind mount on its graphroot while containers exist). */
    mounts(): string[] {
        return fs
            .readFileSync("/proc/self/mountinfo", "utf8")
            .split("\n")
            .map((l) => l.split(" ")[4])
            .filter((m): m is string => m !== undefined && (m === this.root || m.startsWith(`${this.root}/`)))
            .map((m) => m.replace(/\\040/g, " "));
    }

    private removeLeftovers(whose: string): void {
        if (!fs.existsSync(this.root)) return;
        const containers = this.buildah(["containers", "--quiet", "--all"]).split("\n").filter(Boolean);
        if (containers.length > 0) {
            log(`removing ${containers.length} working container(s) left by ${whose}`);
            this.buildah(["rm", "--all"]);
        }
        for (const m of this.mounts().sort().reverse()) {
            run("umount", [m]);
        }
    }

    /** The image's ID, or undefined when the store has no such image. */
    imageId(ref: string): string | undefined {
        const r = spawnSync(
            "buildah",
            [
                "--root",
                this.root,
                "--runroot",
                this.runroot,
                "--storage-driver",
                "overlay",
                "inspect",
                "--type",
                "image",
                "--format",
                "{{.FromImageID}}",
                ref,
            ],
            { encoding: "utf8" },
        );
        return r.status === 0 ? r.stdout.trim() : undefined;
    }

    /** What identifies a base: the script that makes it, the suite and the mirror. */
    baseKey(suite: Suite, mirror: string): string {
        return sha256(fs.readFileSync(BASE_SCRIPT), suite, mirror).slice(0, 16);
    }

    /**
     * docker.io/library/debian:<suite>-slim in the store: debian-base.sh's tar for this suite and mirror (made
     * once, kept under `cacheDir`), committed with timestamps at 0. Returns the base's key (it changes when the
     * script, the suite or the mirror does).
     */
    ensureBase(suite: Suite, mirror: string, cacheDir: string): string {
        const key = this.baseKey(suite, mirror);
        const ref = `docker.io/library/debian:${suite}-slim`;
        const marker = path.join(this.dir, `${suite}-slim.base`);
        const id = this.imageId(ref);
        if (id !== undefined && fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === `${key} ${id}`) return key;

        const tar = path.join(cacheDir, "base", `${suite}-minbase-${key}.tar`);
        if (!fs.existsSync(tar)) {
            fs.mkdirSync(path.dirname(tar), { recursive: true });
            const logFile = `${tar}.log`;
            fs.writeFileSync(logFile, "");
            const start = Date.now();
            log(
                `base: debootstrap --variant=minbase ${suite} from ${mirror} (about 25 s with the .debs cached, minutes without; log ${logFile})`,
            );
            run("bash", [BASE_SCRIPT, suite, mirror, tar, path.join(cacheDir, "debs", suite)], { logFile });
            fs.rmSync(logFile, { force: true });
            log(`base: ${suite} done in ${secs(start)} (${(fs.statSync(tar).size / 1e6).toFixed(0)} MB)`);
            // A base made by an older script or from another mirror is dead weight.
            for (const f of fs.readdirSync(path.dirname(tar))) {
                if (f.startsWith(`${suite}-minbase-`) && f !== path.basename(tar))
                    fs.rmSync(path.join(path.dirname(tar), f), { force: true });
            }
        }
        const start = Date.now();
        const ctr = this.buildah(["from", "--quiet", "scratch"]).trim();
        try {
            this.buildah(["add", "--quiet", ctr, tar, "/"]);
            this.buildah([
                "config",
                "--created-by",
                `debootstrap --variant=minbase ${suite} ${mirror} (scripts/images/debian-base.sh)`,
                ctr,
            ]);
            this.buildah(["commit", "--quiet", "--timestamp", "0", "--identity-label=false", "--rm", ctr, ref]);
        } catch (err) {
            this.buildah(["rm", ctr]);
            throw err;
        }
        fs.writeFileSync(marker, `${key} ${this.imageId(ref)}`);
        log(`base: ${ref} committed into the image store in ${secs(start)}`);
        return key;
    }

    /**
     * `buildah build` of `dockerfile` on `context`, tagged `tag`; progress lines name `label`, the output goes to
     * `logFile`. Returns how many steps came from the layer cache.
     */
    build(o: {
        label: string;
        dockerfile: string;
        context: string;
        tag: string;
        buildArgs: Readonly<Record<string, string>>;
        logFile: string;
        layerCache: boolean;
    }): number {
        const args = [
            "build",
            "--isolation",
            "chroot",
            "--pull=never",
            "--layers",
            ...(o.layerCache ? [] : ["--no-cache"]),
            "--force-rm",
            // Reproducible: the created times and every file's time in the layers are 0.
            "--timestamp",
            "0",
            "--identity-label=false",
            ...Object.entries(o.buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
            "-f",
            o.dockerfile,
            "-t",
            o.tag,
            o.context,
        ];
        // buildah's own output goes to the log; each STEP line is also printed with the elapsed time.
        const filter =
            'set -o pipefail; "$@" 2>&1 | tee -a "$LOG" | while IFS= read -r l; do case "$l" in "STEP "*) ' +
            // biome-ignore lint/suspicious/noTemplateCurlyInString: ${l:0:140} is bash's, expanded by the shell
            'printf "[images %4ds] %s: %s\\n" $((T0 + SECONDS)) "$LABEL" "${l:0:140}" >&2;; esac; done';
        const r = spawnSync(
            "bash",
            [
                "-c",
                filter,
                "bash",
                "buildah",
                "--root",
                this.root,
                "--runroot",
                this.runroot,
                "--storage-driver",
                "overlay",
                ...args,
            ],
            {
                stdio: ["ignore", "inherit", "inherit"],
                env: {
                    ...process.env,
                    LOG: o.logFile,
                    LABEL: o.label,
                    T0: String(Math.round((Date.now() - t0) / 1000)),
                },
            },
        );
        if (r.status !== 0) {
            const tail = fs.readFileSync(o.logFile, "utf8").trimEnd().split("\n").slice(-25).join("\n");
            throw new Error(
                `${o.label}: buildah build -f ${o.dockerfile} failed (${r.status ?? r.signal}), log ${o.logFile}:\n${tail}`,
            );
        }
        return (fs.readFileSync(o.logFile, "utf8").match(/^--> Using cache /gm) ?? []).length;
    }

    /** Writes `ref` as an OCI archive that names it `ref`; returns the manifest digest (what containerd reports). */
    pushArchive(ref: string, archive: string): string {
        fs.rmSync(`${archive}.tmp`, { force: true });
        // An OCI archive's layers are always compressed; level 1 costs a third less CPU than the default, and the
        // archive only travels to the local containerd.
        this.buildah([
            "push",
            "--quiet",
            "--compression-format",
            "gzip",
            "--compression-level",
            "1",
            ref,
            `oci-archive:${archive}.tmp:${ref}`,
        ]);
        const index = JSON.parse(execFileSync("tar", ["-xOf", `${archive}.tmp`, "index.json"], { encoding: "utf8" }));
        fs.renameSync(`${archive}.tmp`, archive);
        return index.manifests[0].digest as string;
    }

    /**
     * Removes the store's images named `repository` except `keep`, then every unnamed image no named one builds
     * on (the layer cache of removed images and of --no-cache rebuilds); what a kept image shares stays.
     */
    removeImages(repository: string, keep?: string): void {
        const names = this.buildah(["images", "--noheading", "--format", "{{.Name}}:{{.Tag}}"])
            .split("\n")
            .map((s) => s.trim());
        for (const n of names) {
            if (n.startsWith(`${repository}:`) && n !== keep) this.buildah(["rmi", n]);
        }
        this.buildah(["rmi", "--prune"]);
    }

    /** Runs `argv` in a working container of image `ref` (as the image's user) and removes the container. */
    runInImage(ref: string, argv: readonly string[]): string {
        const ctr = this.buildah(["from", "--quiet", "--pull=never", ref]).trim();
        try {
            return this.buildah(["run", "--isolation", "chroot", ctr, "--", ...argv]);
        } finally {
            this.buildah(["rm", ctr]);
        }
    }
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
}
