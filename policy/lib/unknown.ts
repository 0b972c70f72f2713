/**
 * During `pulumi preview`, a value computed from another resource's output is unknown. @pulumi/policy hands
 * policies a proxy that throws its `UnknownValueError` when such a value is read, and reports that error as an
 * advisory "can't run policy during preview" diagnostic instead of a violation. These helpers let a policy
 * read a value, see that it is unknown, finish checking everything that is known, and only then hand the
 * error back to @pulumi/policy.
 */

// The error class is re-exported by @pulumi/policy's entry point at runtime, but its type declarations are
// stripped (marked internal), and loading the entry point starts nothing but pulls in the whole SDK. Loading
// the small proxy module directly gives the very class the server checks with `instanceof`. The SDK is pinned
// exactly in package.json; tests/policy covers this path in-process and over gRPC.
const { UnknownValueError } = require("@pulumi/policy/proxy") as { UnknownValueError: new (...args: any[]) => Error };

/** True when `err` is @pulumi/policy's "value unknown during preview" error. */
export function isUnknownValueError(err: unknown): err is Error {
    return err instanceof UnknownValueError;
}

/** The outcome of reading a value that may be unknown during preview. */
export type Peeked<T> = { readonly known: true; readonly value: T } | { readonly known: false; readonly error: Error };

/** Runs `read`; an unknown value becomes `{ known: false }`, any other error propagates. */
export function peek<T>(read: () => T): Peeked<T> {
    try {
        return { known: true, value: read() };
    } catch (err) {
        if (isUnknownValueError(err)) {
            return { known: false, error: err };
        }
        throw err;
    }
}
