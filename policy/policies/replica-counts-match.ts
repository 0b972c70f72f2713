import type { PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { HPA_TYPES, TYPES, describe, labelsOf, nameOf, namespaceOf, replicasText } from "../lib/kubernetes";
import { Peeked, peek } from "../lib/unknown";

const params = {
    groupLabel: param("app.kubernetes.io/part-of", {
        type: "string", minLength: 1,
        description: "Label whose value ties an API Deployment to its database StatefulSet.",
    }),
    componentLabel: param("app.kubernetes.io/component", {
        type: "string", minLength: 1,
        description: "Label that says which role a workload plays.",
    }),
    apiComponent: param("api", {
        type: "string", minLength: 1,
        description: "componentLabel value of the API Deployments.",
    }),
    databaseComponent: param("database", {
        type: "string", minLength: 1,
        description: "componentLabel value of the database StatefulSets.",
    }),
    requirePair: param(true, {
        type: "boolean",
        description: "Flag an API without a database in its group (and the reverse), so a label typo cannot " +
            "switch the check off.",
    }),
    flagAutoscalers: param(true, {
        type: "boolean",
        description: "Flag a HorizontalPodAutoscaler that scales a paired workload, unless it pins " +
            "minReplicas = maxReplicas = the partner's count.",
    }),
    unknownReplicas: param("advisory" as "advisory" | "violation", {
        type: "string", enum: ["advisory", "violation"],
        description: "A replica count unknown during preview: 'advisory' checks every known pair, then reports the " +
            "unknown ones as an advisory preview note (the check runs again on update); 'violation' reports them " +
            "at this policy's enforcement level.",
    }),
    apiReplicasConfigKey: param("apiReplicas", {
        type: "string",
        description: "Stack config key of the API's replicas, quoted in the fix hint ('' to omit the hint).",
    }),
    databaseReplicasConfigKey: param("postgresReplicas", {
        type: "string",
        description: "Stack config key of the database's replicas, quoted in the fix hint ('' to omit the hint).",
    }),
};

/** The values `replica-counts-match` runs with when no policy config is given. */
export const defaults = defaultsOf(params);
export type ReplicaCountsMatchConfig = typeof defaults;

interface Workload {
    readonly resource: PolicyResource;
    readonly kind: "Deployment" | "StatefulSet";
    readonly label: string;
    readonly group: string;
    readonly replicas: Peeked<number | undefined>;
}

/** `spec.replicas` left unset (or null) means 1, as the API server defaults it; 0 stays 0. */
function effective(replicas: number | undefined | null): number {
    return replicas ?? 1;
}

function countText(n: number, value: number | undefined | null): string {
    const unset = value === undefined || value === null;
    return unset ? `${replicasText(n)} (spec.replicas unset; Kubernetes defaults it to 1)` : replicasText(n);
}

function fixHint(cfg: ReplicaCountsMatchConfig, apiCount: number, dbCount: number): string {
    const base = "Give both the same spec.replicas";
    if (!cfg.apiReplicasConfigKey || !cfg.databaseReplicasConfigKey) {
        return `${base}.`;
    }
    return `${base}: \`pulumi config set ${cfg.apiReplicasConfigKey} ${dbCount}\` to follow the database, ` +
        `or \`pulumi config set ${cfg.databaseReplicasConfigKey} ${apiCount}\` to follow the API.`;
}

function collect(resources: PolicyResource[], type: string, kind: Workload["kind"], component: string,
                 cfg: ReplicaCountsMatchConfig): Workload[] {
    return resources
        .filter(r => r.type === type)
        .filter(r => labelsOf(r.props)[cfg.componentLabel] === component && labelsOf(r.props)[cfg.groupLabel] !== undefined)
        .sort((a, b) => a.urn.localeCompare(b.urn))
        .map(r => ({
            resource: r,
            kind,
            label: describe(kind, r.props, r.name),
            group: labelsOf(r.props)[cfg.groupLabel],
            replicas: peek(() => r.props.spec?.replicas as number | undefined),
        }));
}

function checkAutoscalers(resources: PolicyResource[], target: Workload, partner: Workload, partnerCount: number,
                          reportViolation: ReportViolation): void {
    for (const hpa of resources.filter(r => HPA_TYPES.includes(r.type))) {
        const ref = hpa.props.spec?.scaleTargetRef;
        if (ref?.kind !== target.kind || ref?.name !== nameOf(target.resource.props, target.resource.name) ||
            namespaceOf(hpa.props) !== namespaceOf(target.resource.props)) {
            continue;
        }
        const min: number = hpa.props.spec?.minReplicas ?? 1;
        const max: number = hpa.props.spec?.maxReplicas;
        if (min === max && max === partnerCount) {
            continue; // pinned to the partner's count: it cannot drift
        }
        reportViolation(
            `${describe("HorizontalPodAutoscaler", hpa.props, hpa.name)} scales ${target.label} between ${min} and ${max} ` +
            `replicas at runtime, so its count drifts away from the ${replicasText(partnerCount)} of ${partner.label} ` +
            `whatever spec.replicas says. Remove the autoscaler, or pin it with minReplicas = maxReplicas = ${partnerCount}.`,
            hpa.urn);
    }
}

function validate(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const apis = collect(args.resources, TYPES.deployment, "Deployment", cfg.apiComponent, cfg);
    const databases = collect(args.resources, TYPES.statefulSet, "StatefulSet", cfg.databaseComponent, cfg);
    const pairing = (group: string) => `${cfg.groupLabel}=${group}`;

    if (cfg.requirePair) {
        for (const api of apis.filter(a => !databases.some(d => d.group === a.group))) {
            reportViolation(
                `${api.label} is labelled ${cfg.componentLabel}=${cfg.apiComponent} and ${pairing(api.group)}, but no ` +
                `StatefulSet in the stack carries ${cfg.componentLabel}=${cfg.databaseComponent} with ${pairing(api.group)}, ` +
                `so its replica count cannot be compared. Label the database StatefulSet, fix the labels, or set requirePair: false.`,
                api.resource.urn);
        }
        for (const db of databases.filter(d => !apis.some(a => a.group === d.group))) {
            reportViolation(
                `${db.label} is labelled ${cfg.componentLabel}=${cfg.databaseComponent} and ${pairing(db.group)}, but no ` +
                `Deployment in the stack carries ${cfg.componentLabel}=${cfg.apiComponent} with ${pairing(db.group)}, ` +
                `so its replica count cannot be compared. Label the API Deployment, fix the labels, or set requirePair: false.`,
                db.resource.urn);
        }
    }

    const deferred: { error: Error; note: string }[] = [];
    for (const api of apis) {
        for (const db of databases.filter(d => d.group === api.group)) {
            if (!api.replicas.known || !db.replicas.known) {
                const unknown = [api, db].filter(w => !w.replicas.known).map(w => w.label).join(" and ");
                const error = !api.replicas.known ? api.replicas.error : (db.replicas as { error: Error }).error;
                if (cfg.unknownReplicas === "violation") {
                    reportViolation(
                        `The replica count of ${unknown} is unknown during preview, so ${api.label} cannot be compared with ` +
                        `${db.label} (${pairing(api.group)}). Set spec.replicas from a value known at preview time (stack config), ` +
                        `or set unknownReplicas: advisory to check it on update instead.`,
                        api.resource.urn);
                } else {
                    deferred.push({ error, note: `${api.label} vs ${db.label}: spec.replicas of ${unknown} is unknown` });
                }
                continue;
            }
            const apiCount = effective(api.replicas.value);
            const dbCount = effective(db.replicas.value);
            if (apiCount !== dbCount) {
                reportViolation(
                    `${api.label} runs ${countText(apiCount, api.replicas.value)} but ${db.label}, the database it is ` +
                    `paired with by ${pairing(api.group)}, runs ${countText(dbCount, db.replicas.value)}. ` +
                    fixHint(cfg, apiCount, dbCount),
                    api.resource.urn);
            }
            if (cfg.flagAutoscalers) {
                checkAutoscalers(args.resources, api, db, dbCount, reportViolation);
                checkAutoscalers(args.resources, db, api, apiCount, reportViolation);
            }
        }
    }

    if (deferred.length > 0) {
        // Every known pair has been checked and reported above. Handing @pulumi/policy its own error makes it
        // add an advisory "can't run during preview" note instead of failing; on update the values are known.
        const { error } = deferred[0];
        error.message = `${deferred.map(d => d.note).join("; ")}. Checked again when the values are known (pulumi up).`;
        throw error;
    }
}

/** The API Deployment runs as many replicas as the Postgres StatefulSet it is paired with. */
export const replicaCountsMatch: StackValidationPolicy = {
    name: "replica-counts-match",
    description: "Each API Deployment runs exactly as many replicas as the database StatefulSet it belongs to " +
        "(paired by a shared group label), and no autoscaler makes them drift apart.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateStack: validate,
};
