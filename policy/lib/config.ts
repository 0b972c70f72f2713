/**
 * Policy configuration: each policy declares its defaults once; the same object feeds its `configSchema`
 * (so `pulumi` shows and validates them) and the values it runs with when no config is given.
 */
import type { PolicyConfigSchema } from "@pulumi/policy";
import type { PolicyConfigJSONSchema } from "@pulumi/policy/schema";

/** One configurable parameter: its JSON schema (without `default`) and its default value. */
export interface Param<T> {
    readonly schema: Omit<PolicyConfigJSONSchema, "default">;
    readonly default: T;
}

/** Declares a parameter; the schema's `type` keeps its literal type through the generic. */
export function param<T>(defaultValue: T, schema: Omit<PolicyConfigJSONSchema, "default">): Param<T> {
    return { schema, default: defaultValue };
}

/** The defaults of a parameter set. */
export type Defaults<P extends Record<string, Param<unknown>>> = { [K in keyof P]: P[K]["default"] };

/** Builds a `configSchema` whose defaults are the parameters' defaults. */
export function configSchema<P extends Record<string, Param<unknown>>>(params: P): PolicyConfigSchema {
    const properties: PolicyConfigSchema["properties"] = {};
    for (const [key, param] of Object.entries(params)) {
        properties[key] = { ...param.schema, default: param.default as PolicyConfigJSONSchema["default"] };
    }
    return { properties };
}

/** The defaults of a parameter set, as a frozen object. */
export function defaultsOf<P extends Record<string, Param<unknown>>>(params: P): Defaults<P> {
    const out: Record<string, unknown> = {};
    for (const [key, param] of Object.entries(params)) {
        out[key] = param.default;
    }
    return Object.freeze(out) as Defaults<P>;
}

/** Defaults first, then whatever the policy config sets (user values last). */
export function resolveConfig<T extends object>(defaults: T, args: { getConfig<C extends object>(): C }): T {
    return { ...defaults, ...args.getConfig<Partial<T>>() };
}
