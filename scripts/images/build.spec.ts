/**
 * The image builder through the real buildah: a tiny Dockerfile on the debootstrap base (made once and kept in
 * the image cache, like every image's), the content cache, the layer cache, the OCI config the archive carries,
 * a digest that reproduces, nothing left behind, and the errors bad inputs get. Needs root, buildah and
 * debootstrap (npm run setup); fails, never skips, without them.
 */
import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type BuiltImage, CACHE, type ImageSpec, buildImage, imageStore, selectImages } from "./build";

const DOCKERFILE = `FROM debian:bookworm-slim
ARG GREETING=unset
ENV APP_MODE=spec
WORKDIR /srv/spec
COPY greeting.txt ./
COPY pkg/ ./pkg/
RUN echo "$GREETING" > built.txt \\
    && chmod 0444 built.txt
USER 4242:4242
ENTRYPOINT ["/bin/cat", "/srv/spec/greeting.txt"]
`;

/** The archive's index and the image config it names. */
function readArchive(archive: string): { index: any; config: any; layers: number } {
    const blob = (digest: string) =>
        JSON.parse(
            execFileSync("tar", ["-xOf", archive, `blobs/sha256/${digest.replace(/^sha256:/, "")}`], {
                encoding: "utf8",
            }),
        );
    const index = JSON.parse(execFileSync("tar", ["-xOf", archive, "index.json"], { encoding: "utf8" }));
    const manifest = blob(index.manifests[0].digest);
    return { index, config: blob(manifest.config.digest), layers: manifest.layers.length };
}

function assertNothingLeft(): void {
    const store = imageStore();
    strictEqual(
        store.buildah(["containers", "--quiet", "--all"]).trim(),
        "",
        "working containers left in the image store",
    );
    deepStrictEqual(store.mounts(), [], "mounts left under the image store");
}

describe("image builder (scripts/images, buildah)", function () {
    this.timeout(120000);
    const nonce = crypto.randomBytes(6).toString("hex");
    let dir: string;
    let first: BuiltImage;
    const tiny = (): ImageSpec => ({
        name: "spec-tiny",
        dockerfile: path.join(dir, "Dockerfile"),
        context: () => dir,
        refs: ["stateful-flask.local/spec-tiny:test"],
        buildArgs: { GREETING: "hello" },
    });

    before(function () {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "image-builder-spec-"));
        fs.writeFileSync(path.join(dir, "Dockerfile"), DOCKERFILE);
        // A fresh greeting each run, so the first build below is a real one.
        fs.writeFileSync(path.join(dir, "greeting.txt"), `${nonce}\n`);
        fs.mkdirSync(path.join(dir, "pkg", "__pycache__"), { recursive: true });
        fs.writeFileSync(path.join(dir, "pkg", "mod.py"), "VALUE = 1\n");
        fs.writeFileSync(path.join(dir, "pkg", "__pycache__", "mod.cpython-311.pyc"), "stale bytecode the tests left");
    });

    after(function () {
        fs.rmSync(dir, { recursive: true, force: true });
        const store = imageStore();
        store.exclusive(() => store.removeImages("stateful-flask.local/spec-tiny"));
        for (const name of ["spec-tiny", "spec-fail"])
            fs.rmSync(path.join(CACHE, name), { recursive: true, force: true });
    });

    it("builds a Dockerfile FROM debian:bookworm-slim, and finds it in the content cache the second time", function () {
        // The first run on a machine also makes the bookworm base (debootstrap: about 25 s with its .debs cached).
        this.timeout(15 * 60 * 1000);
        first = buildImage(tiny());
        strictEqual(first.cached, false);
        match(first.digest, /^sha256:[0-9a-f]{64}$/);
        match(first.archiveRef, /^stateful-flask\.local\/spec-tiny:[0-9a-f]{16}$/);
        const again = buildImage(tiny());
        strictEqual(again.cached, true);
        strictEqual(again.digest, first.digest);
        strictEqual(again.archive, first.archive);
        ok(again.seconds < 5, `a cached image took ${again.seconds} s`);
    });

    it("writes the Dockerfile's ENTRYPOINT, USER, ENV and WORKDIR into the archive, named by its key", function () {
        const { index, config, layers } = readArchive(first.archive);
        strictEqual(index.manifests.length, 1);
        strictEqual(index.manifests[0].digest, first.digest);
        strictEqual(index.manifests[0].annotations["org.opencontainers.image.ref.name"], first.archiveRef);
        deepStrictEqual(config.config.Entrypoint, ["/bin/cat", "/srv/spec/greeting.txt"]);
        strictEqual(config.config.User, "4242:4242");
        deepStrictEqual(config.config.Env, [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_MODE=spec",
        ]);
        strictEqual(config.config.WorkingDir, "/srv/spec");
        // Reproducible: no build time, no builder label.
        strictEqual(config.created, "1970-01-01T00:00:00Z");
        strictEqual(config.config.Labels, undefined);
        // The base, the two COPYs and the RUN (WORKDIR, ENV, USER and ENTRYPOINT only change the config).
        strictEqual(layers, 4);
    });

    it("runs as the image's user, on what COPY and RUN put there (no __pycache__ from the context)", function () {
        const out = imageStore().runInImage(first.archiveRef, [
            "sh",
            "-c",
            "id -u; cat greeting.txt built.txt; ls -A . pkg",
        ]);
        strictEqual(out, `4242\n${nonce}\nhello\n.:\nbuilt.txt\ngreeting.txt\npkg\n\npkg:\nmod.py\n`);
        assertNothingLeft();
    });

    it("builds the same digest again when every step runs again (no layer cache)", function () {
        const rebuilt = buildImage(tiny(), { rebuild: true });
        strictEqual(rebuilt.cached, false);
        strictEqual(rebuilt.digest, first.digest);
        assertNothingLeft();
    });

    it("after a change to a copied file, takes the steps before its COPY from the layer cache", function () {
        fs.writeFileSync(path.join(dir, "pkg", "mod.py"), "VALUE = 2\n");
        const changed = buildImage(tiny());
        strictEqual(changed.cached, false);
        ok(changed.archiveRef !== first.archiveRef, "the key did not change with the file");
        ok(changed.digest !== first.digest, "the digest did not change with the file");
        // ARG, ENV, WORKDIR and the first COPY.
        strictEqual(JSON.parse(fs.readFileSync(`${changed.archive}.json`, "utf8")).stepsFromLayerCache, 4);
        // The previous archive of the image is gone.
        deepStrictEqual(
            fs.readdirSync(path.dirname(changed.archive)).filter((f) => f.endsWith(".tar")),
            [path.basename(changed.archive)],
        );
        assertNothingLeft();
    });

    it("fails a build whose RUN fails with its exit status and buildah's output, and leaves nothing behind", function () {
        const failing = path.join(dir, "Dockerfile.fail");
        fs.writeFileSync(failing, "FROM debian:bookworm-slim\nRUN echo 'about to fail' && exit 3\n");
        throws(
            () => buildImage({ name: "spec-fail", dockerfile: failing, context: () => dir, refs: [] }),
            (err: Error) =>
                /^spec-fail: buildah build -f \S+Dockerfile\.fail failed \(3\), log /.test(err.message) &&
                /about to fail/.test(err.message),
        );
        assertNothingLeft();
    });

    it("refuses a Dockerfile that does not exist, naming it", function () {
        const missing = path.join(dir, "nope", "Dockerfile");
        throws(() => buildImage({ name: "spec-missing", dockerfile: missing, context: () => dir, refs: [] }), {
            message: `spec-missing: the Dockerfile ${missing} does not exist`,
        });
    });

    it("refuses an unknown image name, listing the known ones", function () {
        throws(() => selectImages(["api", "nginx"]), {
            message: 'unknown image "nginx"; known: api, postgres, pause, coredns, traefik, versitygw',
        });
        deepStrictEqual(
            selectImages(["postgres", "api"]).map((s) => s.name),
            ["postgres", "api"],
        );
    });

    it("refuses a name that cannot name an image", function () {
        throws(() => buildImage({ ...tiny(), name: "Spec_Tiny" }), {
            message: 'image name "Spec_Tiny": expected lower-case letters, digits and dashes',
        });
    });

    it("refuses a base it cannot make, since nothing is pulled", function () {
        const ubuntu = path.join(dir, "Dockerfile.ubuntu");
        fs.writeFileSync(ubuntu, "# a comment\nFROM ubuntu:24.04\nRUN true\n");
        throws(() => buildImage({ ...tiny(), dockerfile: ubuntu }), {
            message: `${ubuntu}:2: FROM ubuntu:24.04: nothing is pulled here; the builder provides debian:bookworm-slim, debian:trixie-slim (made by debootstrap) and scratch`,
        });
    });

    it("refuses a COPY source missing from the context, naming the line", function () {
        const copy = path.join(dir, "Dockerfile.copy");
        fs.writeFileSync(copy, "FROM scratch\nCOPY missing.txt /\n");
        throws(() => buildImage({ ...tiny(), dockerfile: copy }), {
            message: `${copy}:2: COPY source "missing.txt" does not exist in the build context ${dir}`,
        });
    });
});
