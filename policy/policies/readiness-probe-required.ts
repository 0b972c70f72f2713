import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, resolveConfig } from "../lib/config";
import { LONG_RUNNING_KINDS, containersOf, kindsParam, workloadOf } from "../lib/kubernetes";

const params = {
    // Jobs and CronJobs run to completion and receive no Service traffic: a readiness probe means nothing there.
    kinds: kindsParam(LONG_RUNNING_KINDS, "containers need a readinessProbe"),
};

/** The values `readiness-probe-required` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const workload = workloadOf(args.type, args.props, args.name, cfg.kinds);
    if (!workload) {
        return;
    }
    // Init containers cannot have readiness probes (the API server rejects them).
    for (const { container, label } of containersOf(workload.podSpec, false)) {
        if (!container.readinessProbe) {
            reportViolation(
                `${workload.label} ${label} has no readinessProbe, so Services send it traffic before it can serve and ` +
                    `rolling updates do not wait for it. Add a readinessProbe (httpGet, tcpSocket, exec or grpc).`,
            );
        }
    }
}

/** Long-running containers say when they are ready. */
export const readinessProbeRequired: ResourceValidationPolicy = {
    name: "readiness-probe-required",
    description:
        "Every container of a long-running workload (Deployment, StatefulSet, DaemonSet) declares a readinessProbe.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
