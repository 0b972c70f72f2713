import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { TYPES, describe, quotedList } from "../lib/kubernetes";

/** DigitalOcean's block-storage classes; the `-retain` ones keep the volume when its claim is deleted. */
const DIGITALOCEAN_BLOCK_STORAGE = [
    "do-block-storage",
    "do-block-storage-retain",
    "do-block-storage-xfs",
    "do-block-storage-xfs-retain",
];

const params = {
    allowedStorageClasses: param(DIGITALOCEAN_BLOCK_STORAGE, {
        type: "array",
        items: { type: "string" },
        minItems: 1,
        description:
            "StorageClasses a volumeClaimTemplate may use. The default is DigitalOcean's block-storage " +
            'classes; add your local cluster\'s class (e.g. "standard") for a local stack.',
    }),
    allowedAccessModes: param(["ReadWriteOnce"] as string[], {
        type: "array",
        items: { type: "string" },
        minItems: 1,
        description: "Access modes a volumeClaimTemplate may request.",
    }),
};

/** The values `statefulset-volume-claims` runs with when no policy config is given. */
export const defaults = defaultsOf(params);

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    if (args.type !== TYPES.statefulSet) {
        return;
    }
    const cfg = resolveConfig(defaults, args);
    const label = describe("StatefulSet", args.props, args.name);
    const templates: any[] = args.props.spec?.volumeClaimTemplates ?? [];
    if (templates.length === 0) {
        reportViolation(
            `${label} has no volumeClaimTemplates, so its data lives on the pod's ephemeral storage or on a volume the ` +
                `replicas share, and is lost or corrupted when a pod moves. Add a volumeClaimTemplate so each replica gets its own PersistentVolumeClaim.`,
        );
        return;
    }
    for (const template of templates) {
        const where = `${label} volumeClaimTemplate "${template.metadata?.name}"`;
        const modes: string[] = [...(template.spec?.accessModes ?? [])];
        const badModes = modes.filter((m) => !cfg.allowedAccessModes.includes(m));
        if (modes.length === 0 || badModes.length > 0) {
            reportViolation(
                `${where} requests access modes [${modes.join(", ")}]; allowed: [${cfg.allowedAccessModes.join(", ")}]. ` +
                    `A database volume must be mounted read-write by a single node at a time.`,
            );
        }
        const storageClass: string | undefined = template.spec?.storageClassName;
        if (!storageClass) {
            reportViolation(
                `${where} sets no storageClassName, so it gets whatever the cluster's default class is, which may not exist ` +
                    `elsewhere or may not be block storage. Set storageClassName to one of: ${quotedList(cfg.allowedStorageClasses)}.`,
            );
        } else if (!cfg.allowedStorageClasses.includes(storageClass)) {
            reportViolation(
                `${where} uses storageClassName "${storageClass}", which is not in the allowed list ` +
                    `(${quotedList(cfg.allowedStorageClasses)}). Use one of those, or add the class to allowedStorageClasses in the policy config.`,
            );
        }
    }
}

/** StatefulSet volumes come from claim templates: ReadWriteOnce, on an allowed storage class. */
export const statefulsetVolumeClaims: ResourceValidationPolicy = {
    name: "statefulset-volume-claims",
    description:
        "Each StatefulSet declares volumeClaimTemplates that request ReadWriteOnce volumes from an explicitly " +
        "named, allowed StorageClass.",
    enforcementLevel: "mandatory",
    configSchema: configSchema(params),
    validateResource: validate,
};
