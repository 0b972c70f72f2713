import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, resolveConfig } from "../lib/config";
import { KNOWN_WORKLOAD_KINDS, containersOf, kindsParam, workloadOf } from "../lib/kubernetes";

const params = {
    kinds: kindsParam(KNOWN_WORKLOAD_KINDS, "containers must run as non-root"),
};

/** The values `run-as-non-root` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const workload = workloadOf(args.type, args.props, args.name, cfg.kinds, { patches: true });
    if (!workload) {
        return;
    }
    const pod = workload.podSpec.securityContext ?? {};
    if (workload.patch) {
        // A patch keeps the object's own settings for what it leaves out: only the values it sets are judged.
        if (pod.runAsNonRoot === false || pod.runAsUser === 0) {
            reportViolation(
                `${workload.label} sets ${pod.runAsNonRoot === false ? "runAsNonRoot: false" : "runAsUser: 0"} in the pod securityContext, ` +
                    `so its containers may run as root. Remove it, or set runAsNonRoot: true with a non-zero runAsUser.`,
            );
        }
    }
    for (const { container, label } of containersOf(workload.podSpec, true)) {
        // A container's securityContext overrides the pod's, field by field.
        const own = container.securityContext ?? {};
        if (workload.patch) {
            if (own.runAsNonRoot === false || own.runAsUser === 0) {
                reportViolation(
                    `${workload.label} ${label} sets ${own.runAsNonRoot === false ? "runAsNonRoot: false" : "runAsUser: 0"} in its securityContext, ` +
                        `so it may run as root. Remove it, or set runAsNonRoot: true with a non-zero runAsUser.`,
                );
            }
            continue;
        }
        const runAsNonRoot: boolean | undefined = own.runAsNonRoot ?? pod.runAsNonRoot;
        const runAsUser: number | undefined = own.runAsUser ?? pod.runAsUser;
        if (runAsNonRoot !== true) {
            const why =
                own.runAsNonRoot === false
                    ? "its securityContext sets runAsNonRoot: false"
                    : "neither the pod nor the container securityContext sets runAsNonRoot: true";
            reportViolation(
                `${workload.label} ${label} may run as root: ${why}. Set spec.template.spec.securityContext.runAsNonRoot: true ` +
                    `(with a non-zero runAsUser when the image has no numeric USER).`,
            );
        } else if (runAsUser === 0) {
            reportViolation(
                `${workload.label} ${label} sets runAsNonRoot: true but runAsUser: 0, so the kubelet refuses to start it. ` +
                    `Use a non-zero runAsUser.`,
            );
        }
    }
}

/** Workload containers are required to run as a non-root user. */
export const runAsNonRoot: ResourceValidationPolicy = {
    name: "run-as-non-root",
    description:
        "Every container and init container of a workload runs with runAsNonRoot: true (from the pod or the " +
        "container securityContext) and a non-zero user, and no patch of a workload sets runAsNonRoot: false or runAsUser: 0.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
