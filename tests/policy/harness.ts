/**
 * Runs policies in-process the way @pulumi/policy's server does: properties wrapped in the SDK's own
 * unknown-checking proxy, config read through getConfig, violations collected with their policy name.
 */
import * as path from "node:path";
import { createRequire } from "node:module";
import type {
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "../../policy/types";

export const POLICY_DIR = path.resolve(__dirname, "..", "..", "policy");

/** Loads a module from the policy pack's own node_modules (the root project does not depend on them). */
export const requireFromPack = createRequire(path.join(POLICY_DIR, "package.json"));

const proxy = requireFromPack("@pulumi/policy/proxy") as {
    unknownCheckingProxy<T extends object>(props: T): T;
    UnknownValueError: new (...args: any[]) => Error;
};

/** What the engine sends for a value unknown during preview (and the SDK's proxy recognises). */
export const UNKNOWN: any = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const UnknownValueError = proxy.UnknownValueError;

/** One reported violation. */
export interface Violation {
    readonly policy: string;
    readonly message: string;
    readonly urn?: string;
}

/** A resource as a test declares it. */
export interface FakeResource {
    readonly type: string;
    readonly name: string;
    readonly props: Record<string, any>;
    readonly urn?: string;
}

export function urnOf(r: FakeResource): string {
    return r.urn ?? `urn:pulumi:test::stateful-flask::${r.type}::${r.name}`;
}

function baseArgs(config: Record<string, unknown>) {
    return {
        getConfig: <T extends object>() => ({ ...config }) as T,
        stackTags: new Map<string, string>(),
        notApplicable: (reason?: string): never => {
            throw new Error(`unexpected notApplicable: ${reason}`);
        },
    };
}

function collector(policy: string, into: Violation[]): ReportViolation {
    return (message: any, urn?: string) => {
        into.push({ policy, message: typeof message === "string" ? message : JSON.stringify(message), urn });
    };
}

/** Runs a resource policy against each resource; returns every violation. */
export async function runResourcePolicy(
    policy: ResourceValidationPolicy,
    resources: FakeResource[],
    config: Record<string, unknown> = {},
): Promise<Violation[]> {
    const violations: Violation[] = [];
    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
    for (const r of resources) {
        const props = proxy.unknownCheckingProxy(structuredClone(r.props));
        const args = {
            ...baseArgs(config),
            type: r.type,
            name: r.name,
            urn: urnOf(r),
            props,
            opts: {
                protect: false,
                ignoreChanges: [],
                aliases: [],
                additionalSecretOutputs: [],
                customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
            },
            isType: () => false,
            asType: () => undefined,
        } as unknown as ResourceValidationArgs;
        for (const validate of validations) {
            await validate(args, collector(policy.name, violations));
        }
    }
    return violations;
}

/** Runs a stack policy over all resources; returns every violation. */
export async function runStackPolicy(
    policy: StackValidationPolicy,
    resources: FakeResource[],
    config: Record<string, unknown> = {},
    violations: Violation[] = [],
): Promise<Violation[]> {
    const policyResources = resources.map((r) => ({
        type: r.type,
        name: r.name,
        urn: urnOf(r),
        props: proxy.unknownCheckingProxy(structuredClone(r.props)),
        opts: {
            protect: false,
            ignoreChanges: [],
            aliases: [],
            additionalSecretOutputs: [],
            customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        },
        dependencies: [],
        propertyDependencies: {},
        isType: () => false,
        asType: () => undefined,
    })) as unknown as PolicyResource[];
    const args = { ...baseArgs(config), resources: policyResources } as unknown as StackValidationArgs;
    await policy.validateStack(args, collector(policy.name, violations));
    return violations;
}
