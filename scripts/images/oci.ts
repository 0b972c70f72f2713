/**
 * Writes a one-layer image as an OCI image layout tar (what `ctr images import` reads), from a layer tar made
 * of the image's root filesystem and the runtime settings the Dockerfile declared.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

/** The runtime part of an image config (OCI image spec, `config`). */
export interface RuntimeConfig {
    readonly Env: string[];
    readonly Cmd?: string[];
    readonly Entrypoint?: string[];
    readonly User?: string;
    readonly WorkingDir?: string;
    readonly ExposedPorts?: Record<string, Record<string, never>>;
    readonly Labels?: Record<string, string>;
    readonly StopSignal?: string;
}

export interface Descriptor {
    readonly mediaType: string;
    readonly digest: string;
    readonly size: number;
}

export function sha256File(file: string): string {
    const hash = crypto.createHash("sha256");
    const fd = fs.openSync(file, "r");
    try {
        const buf = Buffer.alloc(1 << 20);
        let n: number;
        while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
            hash.update(buf.subarray(0, n));
        }
    } finally {
        fs.closeSync(fd);
    }
    return `sha256:${hash.digest("hex")}`;
}

function writeBlob(blobs: string, content: string | Buffer, mediaType: string): Descriptor {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    const digest = `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
    fs.writeFileSync(path.join(blobs, digest.slice("sha256:".length)), data);
    return { mediaType, digest, size: data.length };
}

/** The image config JSON (deterministic: no creation time, so identical inputs give an identical digest). */
export function imageConfig(diffId: string, runtime: RuntimeConfig, history: string[]): string {
    return JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: runtime,
        rootfs: { type: "layers", diff_ids: [diffId] },
        history: history.map(created_by => ({ created_by })),
    });
}

/**
 * Writes `out` (an OCI layout tar) holding one image named `ref` whose only layer is `layerTar` (moved into
 * the archive). Returns the manifest digest, the identity containerd reports for the imported image.
 */
export function writeOciArchive(out: string, layerTar: string, runtime: RuntimeConfig, history: string[], ref: string): string {
    const dir = `${out}.d`;
    fs.rmSync(dir, { recursive: true, force: true });
    const blobs = path.join(dir, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });

    const layerDigest = sha256File(layerTar);
    const layer: Descriptor = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: fs.statSync(layerTar).size };
    fs.renameSync(layerTar, path.join(blobs, layerDigest.slice("sha256:".length)));

    const config = writeBlob(blobs, imageConfig(layerDigest, runtime, history), "application/vnd.oci.image.config.v1+json");
    const manifest = writeBlob(blobs, JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config,
        layers: [layer],
    }), "application/vnd.oci.image.manifest.v1+json");

    fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{
            ...manifest,
            // Without a platform, `ctr images import` filters the image out unless --all-platforms.
            platform: { architecture: "amd64", os: "linux" },
            annotations: { "io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.replace(/^.*:/, "") },
        }],
    }));
    execFileSync("tar", ["--sort=name", "--numeric-owner", "--owner=0", "--group=0", "-cf", `${out}.tmp`, "-C", dir, "."]);
    fs.renameSync(`${out}.tmp`, out);
    fs.rmSync(dir, { recursive: true, force: true });
    return manifest.digest;
}
