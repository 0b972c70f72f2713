/**
 * The database's identity: the application role (`postgresUser`) and database (`postgresDatabase`) exist only
 * from the cluster's first initialisation (bootstrap), and the pods' pg_hba admits only the configured names. A
 * change of either on a stack whose database exists is a full outage (every client refused, the old role and
 * database orphaned), so the program refuses it before registering anything (issue 17.5).
 *
 * How the program knows the names the database was created with: the stack's own last outputs. It reads them
 * through a StackReference to itself (the engine reads the last completed update's checkpoint, in preview and
 * up alike) and exports the names it deployed as `postgresIdentity`. A stack that never exported them (new, or
 * deployed by an older version of this program) has nothing to compare with and records them on this update.
 * `pulumi destroy` clears the outputs with the resources, so a stack rebuilt from nothing may pick new names.
 */
import * as pulumi from "@pulumi/pulumi";

/** The output this module reads back on the next update. */
export const IDENTITY_OUTPUT = "postgresIdentity";

export interface DatabaseIdentity {
    /** `postgresUser`: the application's role. */
    user: string;
    /** `postgresDatabase`: the application's database. */
    database: string;
}

/**
 * The error for a changed identity, or undefined when `current` may be deployed. `previous` is the stack's last
 * `postgresIdentity` output (undefined when it has none); anything but an object with both names is treated as
 * none, since an older program wrote nothing there.
 */
export function identityChangeError(previous: unknown, current: DatabaseIdentity): string | undefined {
    if (typeof previous !== "object" || previous === null) {
        return undefined;
    }
    const p = previous as Partial<DatabaseIdentity>;
    if (typeof p.user !== "string" || typeof p.database !== "string") {
        return undefined;
    }
    const changes: Array<[string, string, string]> = [];
    if (p.user !== current.user) changes.push(["postgresUser", p.user, current.user]);
    if (p.database !== current.database) changes.push(["postgresDatabase", p.database, current.database]);
    if (changes.length === 0) {
        return undefined;
    }
    const what = changes
        .map(([key, was, now]) => `${key} is '${now}', but this stack's database was created with '${was}'`)
        .join("; ");
    const undo = changes.map(([key, was]) => `pulumi config set ${key} ${was}`).join(" && ");
    return (
        `${what}. The application's role and database are created only when the cluster is first initialised, ` +
        `and the database admits only the configured names: deploying this would lock the API out of its data. ` +
        `Nothing was changed. Allowed: the names the database has (${undo}); other names only for a new database ` +
        `(pulumi destroy, or a new stack; README, "Configuration").`
    );
}

/**
 * Reads the stack's own last `postgresIdentity` output and throws identityChangeError's message if `current`
 * differs. Awaited before any resource is registered.
 */
export async function refuseIdentityChange(current: DatabaseIdentity): Promise<void> {
    const self = new pulumi.StackReference("previous-deployment", {
        name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
    });
    const details = await self.getOutputDetails(IDENTITY_OUTPUT);
    const error = identityChangeError(details.value ?? details.secretValue, current);
    if (error) {
        throw new pulumi.RunError(error);
    }
}
