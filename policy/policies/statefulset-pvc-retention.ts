import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { PATCH_TYPES, TYPES, describe } from "../lib/kubernetes";

const params = {
    requireExplicit: param(false, {
        type: "boolean",
        description:
            "Also flag a StatefulSet that leaves persistentVolumeClaimRetentionPolicy unset (Kubernetes then retains).",
    }),
};

/** The values `statefulset-pvc-retention` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const patch = args.type === PATCH_TYPES.statefulSet;
    if (args.type !== TYPES.statefulSet && !patch) {
        return;
    }
    const cfg = resolveConfig(defaults, args);
    const label = describe(patch ? "StatefulSetPatch" : "StatefulSet", args.props, args.name);
    const policy = args.props.spec?.persistentVolumeClaimRetentionPolicy;
    if (policy === undefined || policy === null) {
        // A patch that leaves the policy out keeps the object's own.
        if (cfg.requireExplicit && !patch) {
            reportViolation(
                `${label} leaves persistentVolumeClaimRetentionPolicy unset; Kubernetes retains claims today, but the ` +
                    `intent is not recorded. Set whenDeleted: Retain and whenScaled: Retain explicitly.`,
            );
        }
        return;
    }
    if (policy.whenDeleted === "Delete") {
        reportViolation(
            `${label} sets persistentVolumeClaimRetentionPolicy.whenDeleted: Delete, so deleting the StatefulSet ` +
                `(pulumi destroy, or a replacement) deletes its PersistentVolumeClaims and, with a Delete reclaim policy, the data. ` +
                `Set whenDeleted: Retain.`,
        );
    }
    if (policy.whenScaled === "Delete") {
        reportViolation(
            `${label} sets persistentVolumeClaimRetentionPolicy.whenScaled: Delete, so scaling down deletes the claims ` +
                `(and data) of the removed replicas. Set whenScaled: Retain.`,
        );
    }
}

/** Deleting or scaling down a StatefulSet never deletes its volume claims. */
export const statefulsetPvcRetention: ResourceValidationPolicy = {
    name: "statefulset-pvc-retention",
    description:
        "A StatefulSet's persistentVolumeClaimRetentionPolicy (or one a StatefulSetPatch sets) never deletes " +
        "claims, neither when the StatefulSet is deleted nor when it is scaled down.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
