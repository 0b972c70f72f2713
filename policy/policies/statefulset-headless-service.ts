import type { ReportViolation, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { TYPES, describe, formatLabels, namespaceOf, nameOf, selectorMatches } from "../lib/kubernetes";

const params = {
    requireServiceName: param(true, {
        type: "boolean",
        description: "Flag a StatefulSet that sets no spec.serviceName (its pods then get no stable DNS names).",
    }),
};

/** The values `statefulset-headless-service` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const services = args.resources.filter((r) => r.type === TYPES.service);
    for (const sts of args.resources.filter((r) => r.type === TYPES.statefulSet)) {
        const label = describe("StatefulSet", sts.props, sts.name);
        const namespace = namespaceOf(sts.props);
        const serviceName: string | undefined = sts.props.spec?.serviceName;
        if (!serviceName) {
            if (cfg.requireServiceName) {
                reportViolation(
                    `${label} sets no spec.serviceName, so its pods get no stable DNS names (<pod>.<service>) and clients ` +
                        `and replicas cannot address a given member. Set serviceName to a headless Service in namespace "${namespace}".`,
                    sts.urn,
                );
            }
            continue;
        }
        const service = services.find(
            (s) => nameOf(s.props, s.name) === serviceName && namespaceOf(s.props) === namespace,
        );
        if (!service) {
            reportViolation(
                `${label} names serviceName "${serviceName}", but the stack has no Service "${serviceName}" in namespace ` +
                    `"${namespace}", so its pods get no DNS records. Create a Service with that name, clusterIP: None and a ` +
                    `selector matching the pod template, in the same namespace.`,
                sts.urn,
            );
            continue;
        }
        const serviceLabel = describe("Service", service.props, service.name);
        const clusterIP: string | undefined = service.props.spec?.clusterIP;
        if (clusterIP !== "None") {
            reportViolation(
                `${serviceLabel}, the serviceName of ${label}, is not headless (spec.clusterIP is ` +
                    `${clusterIP === undefined ? "unset" : `"${clusterIP}"`}): it load-balances over a virtual IP instead of ` +
                    `publishing one DNS record per pod. Set spec.clusterIP: None (clusterIP is immutable: the Service is replaced).`,
                service.urn,
            );
        }
        const selector: Record<string, string> = { ...(service.props.spec?.selector ?? {}) };
        const podLabels: Record<string, string> = { ...(sts.props.spec?.template?.metadata?.labels ?? {}) };
        if (Object.keys(selector).length === 0) {
            reportViolation(
                `${serviceLabel}, the serviceName of ${label}, has no selector, so Kubernetes publishes no records for ` +
                    `the StatefulSet's pods. Set spec.selector to labels of the pod template, e.g. ${formatLabels(sts.props.spec?.selector?.matchLabels ?? {})}.`,
                service.urn,
            );
        } else if (!selectorMatches(selector, podLabels)) {
            reportViolation(
                `${serviceLabel} selects ${formatLabels(selector)}, but the pods of ${label} are labelled ` +
                    `${formatLabels(podLabels)}, so the headless Service publishes no (or other) pods. Make the selector a ` +
                    `subset of spec.template.metadata.labels.`,
                service.urn,
            );
        }
    }
}

/** A StatefulSet's serviceName names a headless Service in its namespace that selects its pods. */
export const statefulsetHeadlessService: StackValidationPolicy = {
    name: "statefulset-headless-service",
    description:
        "Each StatefulSet's serviceName names a headless Service (clusterIP: None) in the same stack and " +
        "namespace whose selector matches the StatefulSet's pod labels.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateStack: validate,
};
