import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { KNOWN_WORKLOAD_KINDS, containersOf, kindsParam, quotedList, workloadOf } from "../lib/kubernetes";

const params = {
    kinds: kindsParam(KNOWN_WORKLOAD_KINDS, "container images must be pinned"),
    disallowedTags: param(["latest"] as string[], {
        type: "array",
        items: { type: "string" },
        description: "Mutable tags that do not count as pinned.",
    }),
    requireDigest: param(false, { type: "boolean", description: "Require an @sha256 digest, not just a tag." }),
};

/** The values `image-tag-pinned` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

/** Splits `registry:5000/repo/name:tag@sha256:...` into its tag and digest (a registry port is not a tag). */
export function parseImage(image: string): { tag?: string; digest?: string } {
    const at = image.indexOf("@");
    const digest = at >= 0 ? image.slice(at + 1) : undefined;
    const reference = at >= 0 ? image.slice(0, at) : image;
    const colon = reference.lastIndexOf(":");
    const tag = colon > reference.lastIndexOf("/") ? reference.slice(colon + 1) : undefined;
    return { tag, digest };
}

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const workload = workloadOf(args.type, args.props, args.name, cfg.kinds, { patches: true });
    if (!workload) {
        return;
    }
    for (const { container, label } of containersOf(workload.podSpec, true)) {
        if (workload.patch && container.image === undefined) {
            continue; // the patch leaves this container's image as it is
        }
        const image: string = container.image ?? "";
        const { tag, digest } = parseImage(image);
        const where = `${workload.label} ${label} uses image "${image}"`;
        if (digest) {
            continue; // a digest pins the content whatever the tag says
        }
        if (cfg.requireDigest) {
            reportViolation(
                `${where} without a digest; this pack requires one (requireDigest). Pin it as "${image}@sha256:<digest>".`,
            );
        } else if (tag === undefined) {
            reportViolation(
                `${where} without a tag, which pulls whatever "latest" points to when a pod starts, so replicas can run ` +
                    `different code. Pin a version tag or a digest.`,
            );
        } else if (cfg.disallowedTags.includes(tag)) {
            reportViolation(
                `${where}; the tag "${tag}" is mutable (disallowed: ${quotedList(cfg.disallowedTags)}), so replicas can run ` +
                    `different code and a rollback does not roll back. Pin a version tag or a digest.`,
            );
        }
    }
}

/** Container images carry an immutable version tag or a digest. */
export const imageTagPinned: ResourceValidationPolicy = {
    name: "image-tag-pinned",
    description:
        "Every container and init container of a workload (and every image a patch of one sets) uses an image " +
        "pinned to a version tag or digest, never an untagged image or a mutable tag such as latest.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
