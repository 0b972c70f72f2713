/**
 * What every section parser of the configuration shares: the raw readers (config.ts hands them over; no module
 * here touches `pulumi.Config`) and the typed reads of strings, integers and booleans with their errors.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, validateInteger } from "../components/validate";

export const PROJECT = "stateful-flask";

/** Reads one raw config value (as the Pulumi CLI stores it: a string) by key, without the project prefix. */
export type ConfigReader = (key: string) => string | undefined;
/** Reads one secret config value, kept secret. */
export type SecretReader = (key: string) => pulumi.Output<string> | undefined;

/** Freezes a parsed configuration, leaving the Outputs (secrets) inside it as they are. */
export function deepFreeze<T>(value: T): T {
    if (value && typeof value === "object" && !pulumi.Output.isInstance(value)) {
        Object.values(value).forEach(deepFreeze);
        Object.freeze(value);
    }
    return value;
}

/** Typed reads over a {@link ConfigReader}: an empty string is unset, every bad value a `ConfigError` naming the key. */
export class Reader {
    constructor(private readonly read: ConfigReader) {}

    string(key: string, fallback: string): string;
    string(key: string): string | undefined;
    string(key: string, fallback?: string): string | undefined {
        const raw = this.read(key);
        return raw === undefined || raw === "" ? fallback : raw;
    }

    /** True when the stack sets the key (to anything but ""). */
    isSet(key: string): boolean {
        return this.string(key) !== undefined;
    }

    required(key: string, allowed: string): string {
        const value = this.string(key);
        if (value === undefined) {
            throw new ConfigError(key, value, `this key is required: ${allowed} (pulumi config set ${key} <value>)`);
        }
        return value;
    }

    integer(key: string, fallback: number, min: number, max?: number): number {
        return this.optionalInteger(key, min, max) ?? fallback;
    }

    /** An integer in [min, max], or undefined when unset (the caller's default applies). */
    optionalInteger(key: string, min: number, max?: number): number | undefined {
        const raw = this.string(key);
        if (raw === undefined) {
            return undefined;
        }
        // Number("") and Number(" ") are 0 and Number("1e1") is 10: only plain decimal integers are accepted.
        return validateInteger(key, this.number(key, 0), min, max);
    }

    /** A plain decimal integer as a number, anything else as the string given (for a validator to name), or the fallback. */
    number(key: string, fallback: number): number | string {
        const raw = this.string(key);
        return raw === undefined ? fallback : /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    }

    boolean(key: string, fallback: boolean): boolean {
        const raw = this.string(key);
        if (raw === undefined) {
            return fallback;
        }
        if (raw === "true" || raw === "false") {
            return raw === "true";
        }
        throw new ConfigError(key, raw, "expected true or false");
    }
}
