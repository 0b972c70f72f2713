import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { configSchema, defaultsOf, param, resolveConfig } from "../lib/config";
import { TYPES, containersOf, describe, labelsOf, replicasText } from "../lib/kubernetes";
import { peek } from "../lib/unknown";

/** The variable the project's Postgres image (images/postgres) reads: on (its default), off or strict. */
const MODE_ENV = "SYNCHRONOUS_MODE";

const params = {
    componentLabel: param("app.kubernetes.io/component", {
        type: "string",
        minLength: 1,
        description: "Label that says which role a workload plays.",
    }),
    databaseComponent: param("database", {
        type: "string",
        minLength: 1,
        description: "componentLabel value of the database StatefulSets this policy checks.",
    }),
    synchronousModeConfigKey: param("postgresSynchronousMode", {
        type: "string",
        description: "Stack config key of the synchronous mode, quoted in the fix hint ('' to omit the hint).",
    }),
    replicasConfigKey: param("postgresReplicas", {
        type: "string",
        description: "Stack config key of the database's replicas, quoted in the fix hint ('' to omit the hint).",
    }),
};

/** The values `postgres-synchronous-replication` runs with when no policy config is given. */
export const defaults = defaultsOf(params);
type Config = typeof defaults;

/** A container that sets SYNCHRONOUS_MODE to a literal value (valueFrom cannot be judged before the pod runs). */
interface ModeSetting {
    readonly container: string;
    readonly mode: string;
}

function modeSettings(podSpec: any): ModeSetting[] {
    const settings: ModeSetting[] = [];
    for (const { container, label } of containersOf(podSpec, false)) {
        for (const e of container?.env ?? []) {
            if (e?.name === MODE_ENV && typeof e.value === "string") {
                settings.push({ container: label, mode: e.value });
            }
        }
    }
    return settings;
}

function offHint(cfg: Config): string {
    return cfg.synchronousModeConfigKey
        ? `Turn synchronous replication on: \`pulumi config set ${cfg.synchronousModeConfigKey} on\`.`
        : `Set ${MODE_ENV} to on.`;
}

function strictHint(cfg: Config): string {
    if (!cfg.synchronousModeConfigKey || !cfg.replicasConfigKey) {
        return `Set ${MODE_ENV} to on, or run at least 2 replicas.`;
    }
    return (
        `Use \`pulumi config set ${cfg.synchronousModeConfigKey} on\`, or run at least 2 replicas ` +
        `(\`pulumi config set ${cfg.replicasConfigKey} 2\`).`
    );
}

function validate(args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    if (args.type !== TYPES.statefulSet) {
        return;
    }
    const cfg = resolveConfig(defaults, args);
    if (labelsOf(args.props)[cfg.componentLabel] !== cfg.databaseComponent) {
        return;
    }
    const label = describe("StatefulSet", args.props, args.name);
    const settings = peek(() => modeSettings(args.props.spec?.template?.spec));
    if (!settings.known) {
        // Either mode can be wrong at some replica count, so nothing is decided without it.
        settings.error.message = `${label}: ${MODE_ENV} is unknown. Checked again when the values are known (pulumi up).`;
        throw settings.error;
    }
    const risky = settings.value.filter((s) => s.mode === "off" || s.mode === "strict");
    if (risky.length === 0) {
        return; // on (or unset: the image defaults to on) is safe at any replica count
    }
    const replicas = peek(() => args.props.spec?.replicas as number | undefined | null);
    if (!replicas.known) {
        replicas.error.message =
            `${label}: spec.replicas is unknown, so ${MODE_ENV}=${risky[0].mode} cannot be judged. ` +
            `Checked again when the values are known (pulumi up).`;
        throw replicas.error;
    }
    // Unset (or null) is 1, as the API server defaults it.
    const count = replicas.value ?? 1;
    const runs = `${label} runs ${replicasText(count)}${replicas.value === undefined || replicas.value === null ? " (spec.replicas unset)" : ""}`;
    for (const s of risky) {
        if (s.mode === "off" && count > 1) {
            reportViolation(
                `${runs} with ${MODE_ENV}=off (${s.container}): replication is asynchronous, so a failover may promote ` +
                    `a replica that has not received the latest commits, and commits the API was told succeeded are lost. ` +
                    offHint(cfg),
            );
        }
        if (s.mode === "strict" && count < 2) {
            reportViolation(
                `${runs} with ${MODE_ENV}=strict (${s.container}): no commit is acknowledged until a synchronous ` +
                    `standby confirms it, and without a second member there is none, so every write would hang. ` +
                    strictHint(cfg),
            );
        }
    }
}

/** A replicated Postgres StatefulSet never acknowledges a commit a failover could lose, nor one it can never confirm. */
export const postgresSynchronousReplication: ResourceValidationPolicy = {
    name: "postgres-synchronous-replication",
    description:
        "A database StatefulSet with more than one replica replicates synchronously (SYNCHRONOUS_MODE is " +
        "not off), so a failover never loses a commit the API was told succeeded, and strict mode runs with at least " +
        "two replicas.",
    enforcementLevel: "advisory",
    configSchema: configSchema(params),
    validateResource: validate,
};
