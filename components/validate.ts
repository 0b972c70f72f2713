import { CronExpressionParser } from "cron-parser";
import * as crypto from "node:crypto";
/**
 * Pure validators shared by `config.ts` and the components. Each throws a `ConfigError` whose message names
 * the key, the value that was given and what is allowed, so a bad input fails before any resource is
 * registered.
 */

/** An input the program cannot use. The message names the key, the value and what is allowed. */
export class ConfigError extends Error {
    constructor(
        readonly key: string,
        readonly value: unknown,
        readonly allowed: string,
    ) {
        super(`${key}: ${JSON.stringify(value)} is not valid; ${allowed}`);
        this.name = "ConfigError";
    }
}

/** An integer in [min, max]. `replicas || 1` style coercion is never applied: 0 stays 0 and is rejected. */
export function validateInteger(key: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
        const range =
            max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
        throw new ConfigError(key, value, `expected ${range}`);
    }
    return value;
}

/**
 * The replica counts the API and its database accept (apiReplicas, postgresReplicas): one range for both, because the
 * policy pack's replica-counts-match requires them equal (docs/policy.md), so a count only one side accepts could
 * never pass it. Nine Patroni members at most.
 */
export const REPLICA_LIMITS = { min: 1, max: 9 } as const;

/** A replica count within {@link REPLICA_LIMITS}. */
export function validateReplicas(key: string, value: unknown): number {
    return validateInteger(key, value, REPLICA_LIMITS.min, REPLICA_LIMITS.max);
}

/** One of a fixed set of strings. */
export function validateOneOf<T extends string>(key: string, value: unknown, allowed: readonly T[]): T {
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
        throw new ConfigError(key, value, `expected one of ${allowed.join(", ")}`);
    }
    return value as T;
}

// A storage quantity as Kubernetes accepts it for a volume request: a positive decimal with an optional
// binary (Ki..Ei) or decimal (k..E) suffix. Exponent forms (1e9) are legal quantities but never what a
// person means for a disk, so they are rejected.
const STORAGE_QUANTITY = /^(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const QUANTITY_FACTORS: Record<string, number> = {
    "": 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
};

/** Parses a storage quantity (`5Gi`, `500Mi`, `1T`) into bytes. */
export function quantityToBytes(key: string, value: unknown): number {
    const match = typeof value === "string" ? STORAGE_QUANTITY.exec(value) : null;
    if (!match) {
        throw new ConfigError(key, value, "expected a Kubernetes quantity such as 5Gi, 512Mi or 1Ti");
    }
    return Number(match[1]) * QUANTITY_FACTORS[match[3] ?? ""];
}

/** A storage request of at least `minBytes` (DigitalOcean volumes start at 1Gi). */
export function validateStorageSize(key: string, value: unknown, minBytes = 2 ** 30): string {
    const bytes = quantityToBytes(key, value);
    if (bytes < minBytes) {
        throw new ConfigError(key, value, `expected at least ${minBytes / 2 ** 30}Gi`);
    }
    return value as string;
}

// RFC 1123 subdomain, as Kubernetes requires for Ingress hosts, with an optional leading "*." wildcard.
const DNS_LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const HOST = new RegExp(`^(\\*\\.)?${DNS_LABEL}(\\.${DNS_LABEL})+$`);

/** A fully qualified DNS host name (at least two labels, lower case, no scheme, port or path). */
export function validateHost(key: string, value: unknown): string {
    if (typeof value !== "string" || value.length > 253 || !HOST.test(value) || /^[0-9.]+$/.test(value)) {
        throw new ConfigError(
            key,
            value,
            "expected a lower-case DNS name such as drexii.me or api.example.com (no scheme, port, path or IP address)",
        );
    }
    return value;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const REPOSITORY = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/**
 * A container image pinned to a release: `repo:tag` (tag not `latest`) or `repo@sha256:...`. An untagged
 * image or `:latest` means every restart may run different code, so a rollback cannot name what to go back to.
 */
export function validatePinnedImage(key: string, value: unknown): string {
    const allowed =
        "expected an image pinned to a release, such as registry.example.com/team/app:v1.2.3 or app@sha256:<digest> (untagged and :latest are refused)";
    if (typeof value !== "string" || value.trim() !== value || value === "") {
        throw new ConfigError(key, value, allowed);
    }
    const [nameAndTag, digest] = value.split("@", 2);
    if (digest !== undefined && !DIGEST.test(digest)) {
        throw new ConfigError(key, value, allowed);
    }
    const slash = nameAndTag.lastIndexOf("/");
    const colon = nameAndTag.lastIndexOf(":");
    const hasTag = colon > slash;
    const tag = hasTag ? nameAndTag.slice(colon + 1) : undefined;
    const repository = hasTag ? nameAndTag.slice(0, colon) : nameAndTag;
    // The registry host may carry a port and upper case is allowed there only; check the path after it.
    const firstSlash = repository.indexOf("/");
    const host = firstSlash > 0 ? repository.slice(0, firstSlash) : "";
    const isHost = host !== "" && (host.includes(".") || host.includes(":") || host === "localhost");
    const path = isHost ? repository.slice(firstSlash + 1) : repository;
    if (!REPOSITORY.test(path) || (tag !== undefined && !TAG.test(tag))) {
        throw new ConfigError(key, value, allowed);
    }
    if (digest === undefined && (tag === undefined || tag === "latest")) {
        throw new ConfigError(key, value, allowed);
    }
    return value;
}

/** An IPv4 CIDR block such as 10.244.0.0/16. */
export function validateCidr(key: string, value: unknown): string {
    const match =
        typeof value === "string" ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value) : null;
    if (!match || match.slice(1, 5).some((o) => Number(o) > 255) || Number(match[5]) > 32) {
        throw new ConfigError(key, value, "expected an IPv4 CIDR block such as 10.244.0.0/16");
    }
    return value as string;
}

// Each octet 0-255 and the prefix 0-32, without leading zeros (Go's parser, which DigitalOcean's API uses, refuses them).
const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4_OR_CIDR = new RegExp(`^${OCTET}(\\.${OCTET}){3}(\\/(3[0-2]|[12]?\\d))?$`);

/** An IPv4 address (203.0.113.7) or CIDR block (198.51.100.0/24). */
export function validateAddress(key: string, value: unknown): string {
    if (typeof value !== "string" || !IPV4_OR_CIDR.test(value)) {
        throw new ConfigError(
            key,
            value,
            "expected an IPv4 address or CIDR block such as 203.0.113.7 or 198.51.100.0/24",
        );
    }
    return value;
}

/** A comma-separated list of IPv4 addresses or CIDR blocks (spaces around entries are ignored); "" is the empty list. */
export function validateAddressList(key: string, value: unknown): string[] {
    if (typeof value !== "string") {
        throw new ConfigError(
            key,
            value,
            "expected IPv4 addresses or CIDR blocks separated by commas, such as 203.0.113.7,198.51.100.0/24",
        );
    }
    if (value.trim() === "") {
        return [];
    }
    const entries = value.split(",").map((entry) => entry.trim());
    if (entries.includes("")) {
        throw new ConfigError(
            key,
            value,
            "expected IPv4 addresses or CIDR blocks separated by single commas, such as 203.0.113.7,198.51.100.0/24 (found an empty entry)",
        );
    }
    // The error names the one entry that is wrong, which is what the reader needs in a long list.
    return entries.map((entry) => validateAddress(key, entry));
}

/** A Kubernetes object name (RFC 1123 label): lower case, digits and '-', at most 63 characters. */
export function validateName(key: string, value: unknown, maxLength = 63): string {
    if (typeof value !== "string" || value.length > maxLength || !new RegExp(`^${DNS_LABEL}$`).test(value)) {
        throw new ConfigError(
            key,
            value,
            `expected a lower-case RFC 1123 name (a-z, 0-9, '-'; starts and ends alphanumeric; at most ${maxLength} characters)`,
        );
    }
    return value;
}

/** A 24-hour UTC time of day, HH:MM. */
export function validateTimeOfDay(key: string, value: unknown): string {
    if (typeof value !== "string" || !/^([01]\d|2[0-3]):[0-5]\d$/.test(value)) {
        throw new ConfigError(key, value, "expected a 24-hour UTC time HH:MM such as 04:00");
    }
    return value;
}

/** An e-mail address (for the ACME account). */
export function validateEmail(key: string, value: unknown): string {
    if (typeof value !== "string" || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) {
        throw new ConfigError(key, value, "expected an e-mail address such as ops@example.com");
    }
    return value;
}

// One field of a 5-field cron expression: its name (for the message) and its range; weekday 7 is Sunday, as 0 is.
const CRON_FIELDS: ReadonlyArray<{ name: string; min: number; max: number }> = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12 },
    { name: "day of week", min: 0, max: 7 },
];
// A step `*\/n` or `a-b/n` (never `n/step`), `*`, a number or a range `a-b`.
const CRON_ELEMENT = /^(?:(\*|(\d+)-(\d+))\/(\d+)|\*|(\d+)(?:-(\d+))?)$/;
// A common year (UTC): a day of the month that occurs in it occurs every year.
const COMMON_YEAR = { currentDate: "2026-12-31T23:59:59Z", endDate: "2028-01-01T00:00:00Z", tz: "UTC" };

/** The numbers a field of valid elements names (weekday 7 counted as 0). */
function cronValues(field: string, min: number, max: number): Set<number> {
    const values = new Set<number>();
    for (const element of field.split(",")) {
        const parsed = CRON_ELEMENT.exec(element);
        if (parsed === null) throw new Error(`cron element "${element}" was validated but does not parse`);
        const [, stepped, from, to, step, single, last] = parsed;
        const [lo, hi, by] =
            stepped !== undefined
                ? stepped === "*"
                    ? [min, max, Number(step)]
                    : [Number(from), Number(to), Number(step)]
                : element === "*"
                  ? [min, max, 1]
                  : [Number(single), Number(last ?? single), 1];
        for (let v = lo; v <= hi; v += by) {
            values.add(max === 7 && v === 7 ? 0 : v);
        }
    }
    return values;
}

/**
 * A standard 5-field cron expression (minute hour day-of-month month day-of-week, UTC) of numbers, `*`, ranges
 * `a-b`, lists `a,b` and steps `*\/n` or `a-b/n`, each number within its field's range. When both day fields are
 * restricted, a day matching either fires (cron's rule). Refused, as the Postgres pod refuses them with the same words
 * (images/postgres/pod/postgres_pod/schedule.py, croniter there, cron-parser here): names (`MON`), macros (`@daily`)
 * and `n/step`, which schedulers disagree about; a day field written `*\/n` or covering every day while the other is
 * restricted, which cron implementations read differently; a day of month that does not occur every year in the
 * schedule's months (`0 3 31 2 *` never fires: no full backup would follow the first).
 */
export function validateCronSchedule(key: string, value: unknown): string {
    const shape =
        'expected a 5-field cron expression "minute hour day-of-month month day-of-week" of numbers, *, ranges a-b, lists a,b and steps */n or a-b/n, such as "0 3 * * *"';
    if (typeof value !== "string") {
        throw new ConfigError(key, value, shape);
    }
    const fields = value.split(/ +/);
    if (fields.length !== CRON_FIELDS.length) {
        throw new ConfigError(key, value, shape);
    }
    fields.forEach((field, i) => {
        const { name, min, max } = CRON_FIELDS[i];
        for (const element of field.split(",")) {
            const match = CRON_ELEMENT.exec(element);
            if (!match) {
                throw new ConfigError(key, value, shape);
            }
            const [, , from, to, step, single, last] = match;
            const numbers = [from, to, single, last].filter((n): n is string => n !== undefined).map(Number);
            if (numbers.some((n) => n < min || n > max)) {
                throw new ConfigError(key, value, `the ${name} field allows ${min}-${max} (got ${element})`);
            }
            if (numbers.length === 2 && numbers[0] > numbers[1]) {
                throw new ConfigError(key, value, `the ${name} range ${element} runs backwards`);
            }
            if (step !== undefined && (Number(step) < 1 || Number(step) > max)) {
                throw new ConfigError(key, value, `the ${name} step in ${element} must be from 1 to ${max}`);
            }
        }
    });
    const [, , dayOfMonth, month, dayOfWeek] = fields;
    if (dayOfMonth !== "*" && dayOfWeek !== "*") {
        for (const [field, { name, min, max }] of [
            [dayOfMonth, CRON_FIELDS[2]],
            [dayOfWeek, CRON_FIELDS[4]],
        ] as const) {
            const everyDay = cronValues(field, min, max).size === (max === 7 ? 7 : max - min + 1);
            if (field.startsWith("*") || everyDay) {
                throw new ConfigError(
                    key,
                    value,
                    `both day fields are restricted, so a day matching either fires; the ${name} field ${field} ` +
                        `${field.startsWith("*") ? "starts with *" : "covers every day"}, which cron implementations read differently then: ` +
                        `write * for every day, or the days themselves (such as ${name === "day of month" ? "1-31/2" : "1-5"})`,
                );
            }
        }
    }
    if (!dayOccursEveryYear(cronValues(dayOfMonth, 1, 31), cronValues(month, 1, 12))) {
        throw new ConfigError(
            key,
            value,
            `day of month ${dayOfMonth} does not occur every year in month ${month}, so the schedule would ` +
                "never fire, or fire once in four years; expected days that occur every year in those months, such as 1-28",
        );
    }
    return value;
}

/**
 * Whether one of the days falls in one of the months in a common year, so in every year: cron-parser refuses a day
 * no month has, and finds nothing before the year's end for 29 February. The fields go to it as plain lists, which it
 * reads as every cron does (it refuses duplicates such as weekday `0,7`, which cron accepts).
 */
function dayOccursEveryYear(days: Set<number>, months: Set<number>): boolean {
    try {
        return CronExpressionParser.parse(
            `0 0 ${[...days].join(",")} ${[...months].join(",")} *`,
            COMMON_YEAR,
        ).hasNext();
    } catch {
        return false;
    }
}

/**
 * A path inside a bucket, as pgBackRest takes it for a repository: absolute, segments of letters, digits, '.',
 * '_' and '-', no trailing slash, no `.` or `..` segments.
 */
export function validateRepositoryPath(key: string, value: unknown): string {
    if (
        typeof value !== "string" ||
        value.length > 512 ||
        !/^(\/[A-Za-z0-9._-]+)+$/.test(value) ||
        value.split("/").some((segment) => segment === "." || segment === "..")
    ) {
        throw new ConfigError(
            key,
            value,
            "expected an absolute path in the bucket such as /stateful-flask/dev (starts with /, segments of letters, digits, '.', '_' and '-', no trailing slash)",
        );
    }
    return value;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * An ISO 8601 date and time with an explicit UTC offset or `Z`, such as 2026-11-24T14:01:00Z: a time without an
 * offset means a different instant on every machine that reads it.
 */
export function validateTimestamp(key: string, value: unknown): string {
    const match = typeof value === "string" ? TIMESTAMP.exec(value) : null;
    const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map((n) => Number(n ?? 0));
    const offsetHours = Number(match?.[9] ?? 0);
    const offsetMinutes = Number(match?.[10] ?? 0);
    // Date.UTC rolls 2026-02-30 over to March: a date that does not come back unchanged does not exist.
    const date = new Date(Date.UTC(year, month - 1, day));
    if (
        !match ||
        date.getUTCFullYear() !== year ||
        date.getUTCMonth() !== month - 1 ||
        date.getUTCDate() !== day ||
        hour > 23 ||
        minute > 59 ||
        second > 59 ||
        offsetHours > 14 ||
        offsetMinutes > 59
    ) {
        throw new ConfigError(
            key,
            value,
            "expected an ISO 8601 date and time with a UTC offset or Z, such as 2026-11-24T14:01:00Z or 2026-11-24T15:01:00+01:00",
        );
    }
    return value as string;
}

/** One or more PEM certificates (a CA bundle), each parsed; returns the text unchanged. */
export function validatePemCertificates(key: string, value: unknown): string {
    const blocks =
        typeof value === "string" ? value.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) : null;
    const shown = typeof value === "string" && value.length > 60 ? `${value.slice(0, 57)}...` : value;
    if (!blocks) {
        throw new ConfigError(
            key,
            shown,
            "expected PEM certificates (-----BEGIN CERTIFICATE----- ...), such as the contents of the S3 server's CA file",
        );
    }
    for (const block of blocks) {
        try {
            new crypto.X509Certificate(block);
        } catch (err) {
            throw new ConfigError(
                key,
                shown,
                `expected PEM certificates; one does not parse (${err instanceof Error ? err.message : String(err)})`,
            );
        }
    }
    return value as string;
}
