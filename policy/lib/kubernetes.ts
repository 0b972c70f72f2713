/**
 * Helpers the policies share for reading Kubernetes resources as the Pulumi engine hands them over: the
 * resource's properties (inputs in `Analyze`, planned or final state in `AnalyzeStack`), wrapped by
 * @pulumi/policy in a proxy that throws on values unknown during preview.
 */
import { type Param, param } from "./config";

/** Pulumi type tokens of the Kubernetes kinds the pack governs. */
export const TYPES = {
    deployment: "kubernetes:apps/v1:Deployment",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    job: "kubernetes:batch/v1:Job",
    cronJob: "kubernetes:batch/v1:CronJob",
    service: "kubernetes:core/v1:Service",
} as const;

/**
 * Pulumi type tokens of the server-side-apply patches of those kinds (`new k8s.apps.v1.DeploymentPatch(...)`): each
 * sets the fields it carries on an existing object, named by its metadata, and leaves the others as they are.
 */
export const PATCH_TYPES = {
    deployment: "kubernetes:apps/v1:DeploymentPatch",
    statefulSet: "kubernetes:apps/v1:StatefulSetPatch",
    daemonSet: "kubernetes:apps/v1:DaemonSetPatch",
    job: "kubernetes:batch/v1:JobPatch",
    cronJob: "kubernetes:batch/v1:CronJobPatch",
} as const;

/** Every API version of HorizontalPodAutoscaler pulumi-kubernetes has shipped. */
export const HPA_TYPES: readonly string[] = [
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2beta1:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
];

/** The patches of every HorizontalPodAutoscaler version. */
export const HPA_PATCH_TYPES: readonly string[] = HPA_TYPES.map((t) => `${t}Patch`);

/** Workload kinds whose pod template the hygiene policies inspect, by Pulumi type. */
const WORKLOAD_KINDS: Record<string, string> = {
    [TYPES.deployment]: "Deployment",
    [TYPES.statefulSet]: "StatefulSet",
    [TYPES.daemonSet]: "DaemonSet",
    [TYPES.job]: "Job",
    [TYPES.cronJob]: "CronJob",
};

/** Workload kinds of the patches, by Pulumi type. */
const WORKLOAD_PATCH_KINDS: Record<string, string> = {
    [PATCH_TYPES.deployment]: "Deployment",
    [PATCH_TYPES.statefulSet]: "StatefulSet",
    [PATCH_TYPES.daemonSet]: "DaemonSet",
    [PATCH_TYPES.job]: "Job",
    [PATCH_TYPES.cronJob]: "CronJob",
};

/** The workload kinds the hygiene policies know, for their `kinds` parameter. */
export const KNOWN_WORKLOAD_KINDS: readonly string[] = Object.values(WORKLOAD_KINDS);

/** Kinds that run until stopped; Jobs and CronJobs run to completion. */
export const LONG_RUNNING_KINDS: readonly string[] = ["Deployment", "StatefulSet", "DaemonSet"];

/** The Kubernetes kind of a workload type, or undefined for anything else. */
export function workloadKind(type: string): string | undefined {
    return WORKLOAD_KINDS[type];
}

/** `metadata.namespace`, or `default` when unset (what the API server assumes). */
export function namespaceOf(props: any): string {
    return props?.metadata?.namespace ?? "default";
}

/** `metadata.name`, falling back to the Pulumi resource name when auto-naming leaves it unset. */
export function nameOf(props: any, resourceName: string): string {
    return props?.metadata?.name ?? resourceName;
}

/** How a resource is named in messages: `Kind namespace/name`. */
export function describe(kind: string, props: any, resourceName: string): string {
    return `${kind} ${namespaceOf(props)}/${nameOf(props, resourceName)}`;
}

/** `metadata.labels` as a plain record (empty when unset). */
export function labelsOf(props: any): Record<string, string> {
    return { ...(props?.metadata?.labels ?? {}) };
}

/** The pod template of a workload: `spec.template`, or `spec.jobTemplate.spec.template` for a CronJob. */
export function podTemplateOf(type: string, props: any): { metadata?: any; spec?: any } | undefined {
    if (type === TYPES.cronJob) {
        return props?.spec?.jobTemplate?.spec?.template;
    }
    return props?.spec?.template;
}

/** A container with the path it sits at, for messages. */
export interface ContainerRef {
    readonly container: any;
    /** `container "api"` or `init container "wait-for-db"`. */
    readonly label: string;
    readonly init: boolean;
}

/** The pod's containers, then (when asked) its init containers. */
export function containersOf(podSpec: any, includeInit: boolean): ContainerRef[] {
    const refs: ContainerRef[] = (podSpec?.containers ?? []).map((c: any) => ({
        container: c,
        label: `container "${c?.name}"`,
        init: false,
    }));
    if (includeInit) {
        for (const c of podSpec?.initContainers ?? []) {
            refs.push({ container: c, label: `init container "${c?.name}"`, init: true });
        }
    }
    return refs;
}

/** `{a=1, b=2}`, keys sorted, for messages about selectors and labels. */
export function formatLabels(labels: Record<string, string>): string {
    const entries = Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`);
    return `{${entries.join(", ")}}`;
}

/** True when every key/value of `selector` is present in `labels`. */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
    return Object.keys(selector).every((k) => labels[k] === selector[k]);
}

/** "1 replica", "3 replicas". */
export function replicasText(n: number): string {
    return `${n} replica${n === 1 ? "" : "s"}`;
}

/** A quoted, comma-separated list for messages. */
export function quotedList(values: readonly string[]): string {
    return values.map((v) => `"${v}"`).join(", ");
}

/** A workload of one of `kinds`, with its pod spec; undefined for any other resource. */
export interface Workload {
    readonly kind: string;
    /** `Deployment stateful-namespace/stateful-flask`, or `DeploymentPatch stateful-namespace/stateful-flask`. */
    readonly label: string;
    readonly podSpec: any;
    /**
     * A patch: its pod spec holds only the fields it sets on the live object, so a field it leaves out says nothing
     * (the object keeps its own); a value it sets is judged like any other.
     */
    readonly patch: boolean;
}

/**
 * The workload behind a resource, if it is one of `kinds`; with `patches`, also a patch of one (for the policies that
 * judge values a patch sets, not the ones that require a field to be present).
 */
export function workloadOf(
    type: string,
    props: any,
    resourceName: string,
    kinds: readonly string[],
    opts: { patches?: boolean } = {},
): Workload | undefined {
    const patchKind = opts.patches ? WORKLOAD_PATCH_KINDS[type] : undefined;
    const kind = workloadKind(type) ?? patchKind;
    if (kind === undefined || !kinds.includes(kind)) {
        return undefined;
    }
    const patch = patchKind !== undefined;
    const template =
        patch && kind === "CronJob" ? props?.spec?.jobTemplate?.spec?.template : podTemplateOf(type, props);
    return {
        kind,
        label: describe(patch ? `${kind}Patch` : kind, props, resourceName),
        podSpec: template?.spec ?? {},
        patch,
    };
}

/** The `kinds` parameter every workload-hygiene policy shares. */
export function kindsParam(defaultKinds: readonly string[], what: string): Param<string[]> {
    return param([...defaultKinds], {
        type: "array",
        items: { type: "string", enum: [...KNOWN_WORKLOAD_KINDS] },
        uniqueItems: true,
        description: `Workload kinds whose ${what}.`,
    });
}
