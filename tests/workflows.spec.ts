/**
 * The GitHub workflows: actionlint (with shellcheck on every `run:` block) finds nothing in them, and images.yml
 * publishes the image a tag names, built for linux/amd64, only after its smoke test passed. The tag-to-image
 * mapping is checked by running the workflow's own resolve step with the values GitHub would give it.
 */
import * as assert from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";

const ROOT = path.resolve(__dirname, "..");
const REGISTRY = "registry.digitalocean.com/drexii";
const SHA = "0123456789abcdef0123456789abcdef01234567";

interface Step {
    id?: string;
    name?: string;
    uses?: string;
    run?: string;
    shell?: string;
    if?: string;
    env?: Record<string, string>;
    with?: Record<string, unknown>;
}

/** Substitutes `${{ expr }}` from a table of values; an expression the table lacks fails the test. */
function expand(template: string, context: Record<string, string>): string {
    return template.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, expr: string) => {
        assert.ok(expr in context, `the test has no value for \${{ ${expr} }} (in "${template}")`);
        return context[expr];
    });
}

/** Whether lint-workflows.sh can run here: actionlint already built, or Go to build it. */
function actionlintAvailable(): boolean {
    const script = fs.readFileSync(path.join(ROOT, "scripts/lint-workflows.sh"), "utf8");
    const version = /ACTIONLINT_VERSION="\$\{ACTIONLINT_VERSION:-(v[0-9.]+)\}"/.exec(script)?.[1];
    assert.ok(version, "lint-workflows.sh pins no ACTIONLINT_VERSION");
    const cache = process.env.TOOLCHAIN_CACHE ?? path.join(os.homedir(), ".cache", "stateful-flask-toolchain");
    return (
        fs.existsSync(path.join(cache, `actionlint-${version}`, "bin", "actionlint")) ||
        spawnSync("go", ["version"]).status === 0
    );
}

describe("scripts/lint-workflows.sh", function () {
    // A cold build of actionlint on two busy cores.
    this.timeout(600_000);

    it("finds nothing in .github/workflows, with shellcheck checking the run: blocks", function () {
        if (!actionlintAvailable()) {
            console.log("    skipped: no Go on PATH to build actionlint, and no actionlint in the cache");
            this.skip();
        }
        const r = spawnSync("bash", ["scripts/lint-workflows.sh"], { cwd: ROOT, encoding: "utf8" });
        const output = `${r.stdout}${r.stderr}`;
        assert.strictEqual(r.status, 0, `lint-workflows.sh exited ${r.status}:\n${output}`);
        assert.match(
            output,
            /shellcheck [0-9]+\.[0-9]+/,
            `shellcheck did not run, so run: blocks went unchecked:\n${output}`,
        );
        for (const file of ["images.yml", "main.yml", "pull-request.yml"]) {
            assert.ok(output.includes(`.github/workflows/${file}`), `${file} was not linted:\n${output}`);
        }
    });
});

describe(".github/workflows/images.yml", () => {
    const workflow = yaml.load(fs.readFileSync(path.join(ROOT, ".github/workflows/images.yml"), "utf8")) as any;
    const steps: Step[] = workflow.jobs.publish.steps;

    const only = (what: string, match: (s: Step) => boolean): [Step, number] => {
        const found = steps.map((s, i) => [s, i] as [Step, number]).filter(([s]) => match(s));
        assert.strictEqual(found.length, 1, `expected exactly one ${what} step, found ${found.length}`);
        return found[0];
    };
    const uses = (action: string) => (s: Step) => s.uses?.split("@")[0] === action;
    const [resolveStep, resolveAt] = only("resolve", (s) => s.id === "ref");
    const [buildx, buildxAt] = only("setup-buildx", uses("docker/setup-buildx-action"));
    const [build, buildAt] = only("build-push", uses("docker/build-push-action"));
    const [smoke, smokeAt] = only("smoke test", (s) => /smoke-test\.sh/.test(s.run ?? ""));
    const [doctl, doctlAt] = only("doctl", uses("digitalocean/action-doctl"));
    const [login, loginAt] = only("registry login", (s) => /doctl registry login/.test(s.run ?? ""));
    const [push, pushAt] = only("push", (s) => /\bdocker push\b/.test(s.run ?? ""));

    /** Runs the resolve step as GitHub would for a ref, and returns what it wrote to $GITHUB_OUTPUT. */
    function resolve(refType: "tag" | "branch", refName: string, inputImage = "") {
        assert.strictEqual(resolveStep.shell, "bash");
        const context = { "github.ref_type": refType, "github.ref_name": refName, "inputs.image": inputImage };
        const env = Object.fromEntries(
            Object.entries(resolveStep.env ?? {}).map(([k, v]) => [k, expand(String(v), context)]),
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-workflow-"));
        try {
            const outputFile = path.join(dir, "output");
            fs.writeFileSync(outputFile, "");
            // GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`.
            const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", resolveStep.run!], {
                cwd: ROOT,
                encoding: "utf8",
                env: { PATH: process.env.PATH, GITHUB_OUTPUT: outputFile, GITHUB_SHA: SHA, ...env },
            });
            const outputs: Record<string, string> = {};
            for (const line of fs
                .readFileSync(outputFile, "utf8")
                .split("\n")
                .filter((l) => l)) {
                const at = line.indexOf("=");
                outputs[line.slice(0, at)] = line.slice(at + 1);
            }
            return { status: r.status, log: `${r.stdout}${r.stderr}`, outputs };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    /** The image each later step works on, from the resolve step's outputs through each step's own expressions. */
    function imagesFor(refType: "tag" | "branch", refName: string, inputImage = "") {
        const r = resolve(refType, refName, inputImage);
        assert.strictEqual(r.status, 0, `resolve failed for ${refType} ${refName}:\n${r.log}`);
        const context = Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [`steps.ref.outputs.${k}`, v]));
        return {
            outputs: r.outputs,
            context: expand(String(build.with?.context), context),
            built: expand(String(build.with?.tags), context),
            smoked: expand(smoke.env?.IMAGE ?? "", context),
            smokeScript: expand(smoke.env?.NAME ?? "", context),
            pushed: expand(push.env?.IMAGE ?? "", context),
        };
    }

    it("runs on the two tag patterns and by hand, never on branch pushes", () => {
        assert.deepStrictEqual(workflow.on.push.tags, ["v*", "postgres-*"]);
        assert.strictEqual(workflow.on.push.branches, undefined);
        assert.deepStrictEqual(workflow.on.workflow_dispatch.inputs.image.options, ["api", "postgres"]);
    });

    it("reads the repository only, and runs once at a time per tag without cancelling a push", () => {
        assert.deepStrictEqual(workflow.permissions, { contents: "read" });
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, as the workflow spells it
        assert.strictEqual(workflow.concurrency.group, "images-${{ github.ref }}");
        assert.strictEqual(workflow.concurrency["cancel-in-progress"], false);
    });

    it("builds for linux/amd64 only, into the runner's Docker, pushing nothing from the build", () => {
        assert.strictEqual(buildx.uses, "docker/setup-buildx-action@v3");
        assert.strictEqual(build.uses, "docker/build-push-action@v6");
        assert.strictEqual(build.with?.platforms, "linux/amd64");
        assert.strictEqual(build.with?.load, true);
        assert.strictEqual(build.with?.push, false);
        assert.ok(resolveAt < buildxAt && buildxAt < buildAt, "resolve, then buildx, then the build");
    });

    it("smoke-tests the image before any credential or push step, and pushes only tags", () => {
        assert.ok(
            buildAt < smokeAt && smokeAt < doctlAt && doctlAt < loginAt && loginAt < pushAt,
            `order: build ${buildAt}, smoke ${smokeAt}, doctl ${doctlAt}, login ${loginAt}, push ${pushAt}`,
        );
        assert.strictEqual(smoke.if, undefined, "the smoke test runs on dry runs too");
        assert.strictEqual(smoke.run, 'bash "images/$NAME/smoke-test.sh" "$IMAGE"');
        for (const s of [doctl, login, push]) assert.strictEqual(s.if, "steps.ref.outputs.push == 'true'", s.name);
        assert.strictEqual(doctl.uses, "digitalocean/action-doctl@v2");
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, as the workflow spells it
        assert.strictEqual(doctl.with?.token, "${{ secrets.DIGITALOCEAN_TOKEN }}");
        assert.strictEqual(login.run, "doctl registry login --expiry-seconds 1200");
        assert.strictEqual(push.run, 'docker push "$IMAGE"');
    });

    it("publishes tag v1.0.0 as the API image the dev stack runs", () => {
        const i = imagesFor("tag", "v1.0.0");
        const expected = `${REGISTRY}/stateful-flask:v1.0.0`;
        assert.deepStrictEqual(i.outputs, { name: "api", image: expected, push: "true" });
        assert.strictEqual(i.context, "images/api");
        assert.strictEqual(i.built, expected);
        assert.strictEqual(i.smoked, expected);
        assert.strictEqual(i.smokeScript, "api");
        assert.strictEqual(i.pushed, expected);
        const dev = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as any;
        assert.strictEqual(dev.config["stateful-flask:apiImage"], expected);
        assert.ok(fs.existsSync(path.join(ROOT, i.context, "Dockerfile")));
        assert.ok(fs.existsSync(path.join(ROOT, "images", i.smokeScript, "smoke-test.sh")));
    });

    it("publishes tag postgres-15.20-1 as stateful-flask-postgres:15.20-1", () => {
        const i = imagesFor("tag", "postgres-15.20-1");
        const expected = `${REGISTRY}/stateful-flask-postgres:15.20-1`;
        assert.deepStrictEqual(i.outputs, { name: "postgres", image: expected, push: "true" });
        assert.strictEqual(i.context, "images/postgres");
        assert.strictEqual(i.built, expected);
        assert.strictEqual(i.smoked, expected);
        assert.strictEqual(i.smokeScript, "postgres");
        assert.strictEqual(i.pushed, expected);
        assert.ok(fs.existsSync(path.join(ROOT, i.context, "Dockerfile")));
        assert.ok(fs.existsSync(path.join(ROOT, "images", i.smokeScript, "smoke-test.sh")));
    });

    it("on a branch builds and tests the chosen image under a dry-run tag, and pushes nothing", () => {
        const i = imagesFor("branch", "main", "postgres");
        assert.deepStrictEqual(i.outputs, {
            name: "postgres",
            image: `${REGISTRY}/stateful-flask-postgres:dry-run-${SHA.slice(0, 12)}`,
            push: "false",
        });
    });

    const refused: Array<[string, "tag" | "branch", string, RegExp]> = [
        ["an API tag that is not vMAJOR.MINOR.PATCH", "tag", "v1", /tag v1: API release tags are vMAJOR\.MINOR\.PATCH/],
        [
            "a Postgres tag without an image revision",
            "tag",
            "postgres-15.20",
            /tag postgres-15\.20: Postgres tags are postgres-<PostgreSQL version>-<image revision>/,
        ],
        [
            "a Postgres tag naming another PostgreSQL than packages.txt pins",
            "tag",
            "postgres-15.19-1",
            /tag postgres-15\.19-1 names PostgreSQL 15\.19, but images\/postgres\/packages\.txt pins postgresql-15=15\.20-/,
        ],
        [
            "a branch run without an image",
            "branch",
            "main",
            /a run on a branch needs the image input \(api or postgres\), got ''/,
        ],
    ];
    for (const [what, refType, refName, message] of refused) {
        it(`refuses ${what}, writing no outputs`, () => {
            const r = resolve(refType, refName);
            assert.strictEqual(r.status, 1, r.log);
            assert.match(r.log, message);
            assert.deepStrictEqual(r.outputs, {});
        });
    }
});

describe("workflows: a pull request's code never sees a production secret (issue 17.11)", () => {
    const load = (file: string) =>
        yaml.load(fs.readFileSync(path.join(ROOT, ".github/workflows", file), "utf8")) as any;
    const files = fs.readdirSync(path.join(ROOT, ".github/workflows")).filter((f) => /\.ya?ml$/.test(f));
    /** The secrets a job's definition names, GITHUB_TOKEN (Actions' own, scoped by `permissions`) aside. */
    const secretsOf = (job: unknown) =>
        [...new Set([...JSON.stringify(job).matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))].filter(
            (s) => s !== "GITHUB_TOKEN",
        );
    const triggers = (workflow: any): string[] =>
        typeof workflow.on === "string"
            ? [workflow.on]
            : Array.isArray(workflow.on)
              ? workflow.on
              : Object.keys(workflow.on);
    const SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository";

    it("no workflow runs on pull_request_target (the base repository's secrets with the PR's code)", () => {
        for (const file of files)
            assert.ok(!triggers(load(file)).includes("pull_request_target"), `${file} runs on pull_request_target`);
    });

    it("in every pull_request workflow, a job that names a secret runs in the `preview` environment, only for this repository's branches, and the workflow grants nothing to write", () => {
        const prWorkflows = files.filter((f) => triggers(load(f)).includes("pull_request"));
        assert.deepStrictEqual(prWorkflows, ["pull-request.yml"]);
        for (const file of prWorkflows) {
            const workflow = load(file);
            assert.ok(
                !JSON.stringify(workflow.env ?? {}).includes("secrets."),
                `${file}: a workflow-level env hands secrets to every job`,
            );
            assert.deepStrictEqual(workflow.permissions, { contents: "read" }, `${file}: workflow-level permissions`);
            const withSecrets = Object.entries(workflow.jobs).filter(([, job]) => secretsOf(job).length > 0);
            assert.ok(withSecrets.length > 0, `${file}: no job names a secret, so this test checks nothing`);
            for (const [name, job] of withSecrets as Array<[string, any]>) {
                assert.strictEqual(
                    job.environment,
                    "preview",
                    `${file}: job ${name} reads ${secretsOf(job).join(", ")} outside the preview environment`,
                );
                assert.strictEqual(job.if, SAME_REPOSITORY, `${file}: job ${name} must not run for forks`);
            }
            for (const [name, job] of Object.entries(workflow.jobs) as Array<[string, any]>) {
                if (job.environment !== "preview") {
                    assert.deepStrictEqual(secretsOf(job), [], `${file}: job ${name}`);
                    assert.ok(
                        !Object.values(job.permissions ?? {}).includes("write"),
                        `${file}: job ${name} may write`,
                    );
                }
            }
        }
    });

    it("a fork's pull request is told it is not previewed (the complement of the preview job's condition)", () => {
        const jobs = load("pull-request.yml").jobs;
        assert.strictEqual(jobs.fork.if, SAME_REPOSITORY.replace("==", "!="));
        assert.match(jobs.fork.steps[0].run, /::notice::Not previewed: this pull request comes from a fork/);
    });

    it("the test jobs, which run the PR's code privileged (buildah's mounts, iptables), name no secret", () => {
        for (const file of ["pull-request.yml", "main.yml"]) {
            const job = load(file).jobs.test;
            assert.deepStrictEqual(job.container, { image: "node:24-bookworm", options: "--privileged" }, file);
            assert.deepStrictEqual(secretsOf(job), [], file);
            assert.strictEqual(job.environment, undefined, file);
        }
    });

    it("main.yml deploys with secrets only inside the environment named after the stack", () => {
        const workflow = load("main.yml");
        assert.deepStrictEqual(triggers(workflow), ["push"]);
        assert.deepStrictEqual(workflow.on.push.branches, ["main"]);
        for (const [name, job] of Object.entries(workflow.jobs) as Array<[string, any]>) {
            if (secretsOf(job).length > 0) {
                // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, as the workflow spells it
                assert.strictEqual(job.environment, "${{ matrix.stack }}", `main.yml: job ${name}`);
            }
        }
    });
});
