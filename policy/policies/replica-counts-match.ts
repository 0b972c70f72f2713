import type { PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import {
    HPA_PATCH_TYPES,
    HPA_TYPES,
    PATCH_TYPES,
    TYPES,
    describe,
    labelsOf,
    nameOf,
    namespaceOf,
    replicasText,
} from "../lib/kubernetes";
import { type Peeked, peek } from "../lib/unknown";

const params = {
    groupLabel: param("app.kubernetes.io/part-of", {
        type: "string",
        minLength: 1,
        description: "Label whose value ties an API Deployment to its database StatefulSet.",
    }),
    componentLabel: param("app.kubernetes.io/component", {
        type: "string",
        minLength: 1,
        description: "Label that says which role a workload plays.",
    }),
    apiComponent: param("api", {
        type: "string",
        minLength: 1,
        description: "componentLabel value of the API Deployments.",
    }),
    databaseComponent: param("database", {
        type: "string",
        minLength: 1,
        description: "componentLabel value of the database StatefulSets.",
    }),
    requirePair: param(true, {
        type: "boolean",
        description:
            "Flag an API without a database in its group (and the reverse), so a label typo cannot " +
            "switch the check off.",
    }),
    flagAutoscalers: param(true, {
        type: "boolean",
        description:
            "Flag a HorizontalPodAutoscaler that scales a paired workload, unless it pins " +
            "minReplicas = maxReplicas = the partner's count.",
    }),
    unknownReplicas: param("advisory" as "advisory" | "violation", {
        type: "string",
        enum: ["advisory", "violation"],
        description:
            "A replica count unknown during preview: 'advisory' checks every known pair, then reports the " +
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
    readonly labels: Record<string, string>;
    readonly replicas: Peeked<number | undefined>;
    /** The patch whose spec.replicas the count is, when one sets it: `DeploymentPatch ns/name`. */
    readonly countFrom?: string;
    /** A patch of an object this stack does not declare: a count it leaves out is the live object's, unknown here. */
    readonly patchOnly: boolean;
}

/** A paired workload: one with both the component and the group label. */
interface Paired extends Workload {
    readonly group: string;
}

/** `spec.replicas` left unset (or null) means 1, as the API server defaults it; 0 stays 0. */
function effective(replicas: number | undefined | null): number {
    return replicas ?? 1;
}

function countText(w: Workload, n: number): string {
    const value = w.replicas.known ? w.replicas.value : undefined;
    if (w.countFrom) {
        return `${replicasText(n)} (spec.replicas set by ${w.countFrom})`;
    }
    const unset = value === undefined || value === null;
    return unset ? `${replicasText(n)} (spec.replicas unset; Kubernetes defaults it to 1)` : replicasText(n);
}

function fixHint(cfg: ReplicaCountsMatchConfig, apiCount: number, dbCount: number): string {
    const base = "Give both the same spec.replicas";
    if (!cfg.apiReplicasConfigKey || !cfg.databaseReplicasConfigKey) {
        return `${base}.`;
    }
    return (
        `${base}: \`pulumi config set ${cfg.apiReplicasConfigKey} ${dbCount}\` to follow the database, ` +
        `or \`pulumi config set ${cfg.databaseReplicasConfigKey} ${apiCount}\` to follow the API.`
    );
}

const sameObject = (a: PolicyResource, b: PolicyResource) =>
    nameOf(a.props, a.name) === nameOf(b.props, b.name) && namespaceOf(a.props) === namespaceOf(b.props);

/**
 * The Deployments (or StatefulSets) of the stack as they will run: each object with the patches of it applied (their
 * labels added, their spec.replicas taking over), and each patch of an object the stack does not declare on its own.
 */
function workloads(resources: PolicyResource[], kind: Workload["kind"]): Workload[] {
    const type = kind === "Deployment" ? TYPES.deployment : TYPES.statefulSet;
    const patchType = kind === "Deployment" ? PATCH_TYPES.deployment : PATCH_TYPES.statefulSet;
    const byUrn = (a: PolicyResource, b: PolicyResource) => a.urn.localeCompare(b.urn);
    const objects = resources.filter((r) => r.type === type).sort(byUrn);
    const patches = resources.filter((r) => r.type === patchType).sort(byUrn);
    const result: Workload[] = objects.map((object) => {
        let labels = labelsOf(object.props);
        let replicas = peek(() => object.props.spec?.replicas as number | undefined);
        let countFrom: string | undefined;
        for (const patch of patches.filter((p) => sameObject(p, object))) {
            labels = { ...labels, ...labelsOf(patch.props) };
            const patched = peek(() => patch.props.spec?.replicas as number | undefined);
            if (!patched.known || (patched.value !== undefined && patched.value !== null)) {
                replicas = patched;
                countFrom = describe(`${kind}Patch`, patch.props, patch.name);
            }
        }
        return {
            resource: object,
            kind,
            label: describe(kind, object.props, object.name),
            labels,
            replicas,
            countFrom,
            patchOnly: false,
        };
    });
    for (const patch of patches.filter((p) => !objects.some((o) => sameObject(p, o)))) {
        const label = describe(`${kind}Patch`, patch.props, patch.name);
        const replicas = peek(() => patch.props.spec?.replicas as number | undefined);
        result.push({
            resource: patch,
            kind,
            label,
            labels: labelsOf(patch.props),
            replicas,
            countFrom: label,
            patchOnly: true,
        });
    }
    return result;
}

/** An autoscaler as it will run: an object with its patches applied, or a patch of one the stack does not declare. */
interface Autoscaler {
    readonly resource: PolicyResource;
    readonly label: string;
    readonly spec: any;
}

function autoscalers(resources: PolicyResource[]): Autoscaler[] {
    const objects = resources.filter((r) => HPA_TYPES.includes(r.type));
    const patches = resources.filter((r) => HPA_PATCH_TYPES.includes(r.type));
    const result: Autoscaler[] = objects.map((object) => ({
        resource: object,
        label: describe("HorizontalPodAutoscaler", object.props, object.name),
        spec: Object.assign(
            { ...(object.props.spec ?? {}) },
            ...patches.filter((p) => sameObject(p, object)).map((p) => p.props.spec ?? {}),
        ),
    }));
    for (const patch of patches.filter((p) => !objects.some((o) => sameObject(p, o)))) {
        result.push({
            resource: patch,
            label: describe("HorizontalPodAutoscalerPatch", patch.props, patch.name),
            spec: patch.props.spec ?? {},
        });
    }
    return result;
}

function checkAutoscalers(
    all: Autoscaler[],
    target: Paired,
    partner: Paired,
    partnerCount: number,
    reportViolation: ReportViolation,
): void {
    for (const hpa of all) {
        const ref = hpa.spec.scaleTargetRef;
        if (
            ref?.kind !== target.kind ||
            ref?.name !== nameOf(target.resource.props, target.resource.name) ||
            namespaceOf(hpa.resource.props) !== namespaceOf(target.resource.props)
        ) {
            continue;
        }
        const min: number = hpa.spec.minReplicas ?? 1;
        const max: number = hpa.spec.maxReplicas;
        if (min === max && max === partnerCount) {
            continue; // pinned to the partner's count: it cannot drift
        }
        reportViolation(
            `${hpa.label} scales ${target.label} between ${min} and ${max} ` +
                `replicas at runtime, so its count drifts away from the ${replicasText(partnerCount)} of ${partner.label} ` +
                `whatever spec.replicas says. Remove the autoscaler, or pin it with minReplicas = maxReplicas = ${partnerCount}.`,
            hpa.resource.urn,
        );
    }
}

function validate(args: StackValidationArgs, reportViolation: ReportViolation): void {
    const cfg = resolveConfig(defaults, args);
    const deployments = workloads(args.resources, "Deployment");
    const statefulSets = workloads(args.resources, "StatefulSet");
    const paired = (ws: Workload[], component: string): Paired[] =>
        ws
            .filter((w) => w.labels[cfg.componentLabel] === component && w.labels[cfg.groupLabel] !== undefined)
            .map((w) => ({ ...w, group: w.labels[cfg.groupLabel] }));
    const apis = paired(deployments, cfg.apiComponent);
    const databases = paired(statefulSets, cfg.databaseComponent);
    const pairing = (group: string) => `${cfg.groupLabel}=${group}`;

    if (cfg.requirePair) {
        // In a group but with no role in it: neither an API nor a database, so it would drop out of the check unseen.
        for (const w of [...deployments, ...statefulSets]) {
            if (w.labels[cfg.groupLabel] !== undefined && w.labels[cfg.componentLabel] === undefined) {
                const role = w.kind === "Deployment" ? cfg.apiComponent : cfg.databaseComponent;
                reportViolation(
                    `${w.label} is labelled ${pairing(w.labels[cfg.groupLabel])} but has no ${cfg.componentLabel} label, so it is ` +
                        `neither an API nor a database of that group and its replica count is not compared. Label it ` +
                        `${cfg.componentLabel}=${role} (or another component, such as worker), or set requirePair: false.`,
                    w.resource.urn,
                );
            }
        }
        // A patch of an object the stack does not declare that leaves spec.replicas out: the count is the live one.
        for (const w of [...apis, ...databases].filter(
            (w) => w.patchOnly && w.replicas.known && (w.replicas.value === undefined || w.replicas.value === null),
        )) {
            reportViolation(
                `${w.label} pairs an object this stack does not declare (${pairing(w.group)}) but sets no spec.replicas, so its ` +
                    `count is whatever the live object has and cannot be compared. Set spec.replicas in the patch.`,
                w.resource.urn,
            );
        }
        for (const api of apis.filter((a) => !databases.some((d) => d.group === a.group))) {
            reportViolation(
                `${api.label} is labelled ${cfg.componentLabel}=${cfg.apiComponent} and ${pairing(api.group)}, but no ` +
                    `StatefulSet in the stack carries ${cfg.componentLabel}=${cfg.databaseComponent} with ${pairing(api.group)}, ` +
                    `so its replica count cannot be compared. Label the database StatefulSet, fix the labels, or set requirePair: false.`,
                api.resource.urn,
            );
        }
        for (const db of databases.filter((d) => !apis.some((a) => a.group === d.group))) {
            reportViolation(
                `${db.label} is labelled ${cfg.componentLabel}=${cfg.databaseComponent} and ${pairing(db.group)}, but no ` +
                    `Deployment in the stack carries ${cfg.componentLabel}=${cfg.apiComponent} with ${pairing(db.group)}, ` +
                    `so its replica count cannot be compared. Label the API Deployment, fix the labels, or set requirePair: false.`,
                db.resource.urn,
            );
        }
    }

    const scalers = autoscalers(args.resources);
    const deferred: { error: Error; note: string }[] = [];
    const uncountable = (w: Workload) =>
        w.patchOnly && w.replicas.known && (w.replicas.value === undefined || w.replicas.value === null);
    for (const api of apis.filter((a) => !uncountable(a))) {
        for (const db of databases.filter((d) => d.group === api.group && !uncountable(d))) {
            if (!api.replicas.known || !db.replicas.known) {
                const unknown = [api, db]
                    .filter((w) => !w.replicas.known)
                    .map((w) => w.label)
                    .join(" and ");
                const error = !api.replicas.known ? api.replicas.error : (db.replicas as { error: Error }).error;
                if (cfg.unknownReplicas === "violation") {
                    reportViolation(
                        `The replica count of ${unknown} is unknown during preview, so ${api.label} cannot be compared with ` +
                            `${db.label} (${pairing(api.group)}). Set spec.replicas from a value known at preview time (stack config), ` +
                            `or set unknownReplicas: advisory to check it on update instead.`,
                        api.resource.urn,
                    );
                } else {
                    deferred.push({
                        error,
                        note: `${api.label} vs ${db.label}: spec.replicas of ${unknown} is unknown`,
                    });
                }
                continue;
            }
            const apiCount = effective(api.replicas.value);
            const dbCount = effective(db.replicas.value);
            if (apiCount !== dbCount) {
                reportViolation(
                    `${api.label} runs ${countText(api, apiCount)} but ${db.label}, the database it is ` +
                        `paired with by ${pairing(api.group)}, runs ${countText(db, dbCount)}. ` +
                        fixHint(cfg, apiCount, dbCount),
                    api.resource.urn,
                );
            }
            if (cfg.flagAutoscalers) {
                checkAutoscalers(scalers, api, db, dbCount, reportViolation);
                checkAutoscalers(scalers, db, api, apiCount, reportViolation);
            }
        }
    }

    if (deferred.length > 0) {
        // Every known pair has been checked and reported above. Handing @pulumi/policy its own error makes it
        // add an advisory "can't run during preview" note instead of failing; on update the values are known.
        const { error } = deferred[0];
        error.message = `${deferred.map((d) => d.note).join("; ")}. Checked again when the values are known (pulumi up).`;
        throw error;
    }
}

/** The API Deployment runs as many replicas as the Postgres StatefulSet it is paired with. */
export const replicaCountsMatch: StackValidationPolicy = {
    name: "replica-counts-match",
    description:
        "Each API Deployment runs exactly as many replicas as the database StatefulSet it belongs to " +
        "(paired by a shared group label, with the DeploymentPatch and StatefulSetPatch resources of the stack applied), " +
        "no autoscaler (or autoscaler patch) makes them drift apart, and no Deployment or StatefulSet of a group lacks its component label.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateStack: validate,
};
