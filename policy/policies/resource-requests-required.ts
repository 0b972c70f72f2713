import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { LONG_RUNNING_KINDS, containersOf, kindsParam, workloadOf } from "../lib/kubernetes";

const params = {
    kinds: kindsParam(LONG_RUNNING_KINDS, "containers need resource requests"),
    resources: param(["cpu", "memory"] as string[], {
        type: "array",
        items: { type: "string" },
        minItems: 1,
        description: "Resources every container must request.",
    }),
};

/** The values `resource-requests-required` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const workload = workloadOf(args.type, args.props, args.name, cfg.kinds);
    if (!workload) {
        return;
    }
    for (const { container, label } of containersOf(workload.podSpec, false)) {
        const requests = container.resources?.requests ?? {};
        const missing = cfg.resources.filter(
            (r) => requests[r] === undefined || requests[r] === null || requests[r] === "",
        );
        if (missing.length > 0) {
            reportViolation(
                `${workload.label} ${label} requests no ${missing.join(" or ")}, so the scheduler can place it on a node ` +
                    `without room for it and it is among the first evicted under pressure. Set ` +
                    `${missing.map((r) => `resources.requests.${r}`).join(" and ")}.`,
            );
        }
    }
}

/** Long-running containers request the CPU and memory they need. */
export const resourceRequestsRequired: ResourceValidationPolicy = {
    name: "resource-requests-required",
    description:
        "Every container of a long-running workload (Deployment, StatefulSet, DaemonSet) sets CPU and memory requests.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
