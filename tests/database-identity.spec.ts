/**
 * components/database-identity.ts: a stack whose database exists keeps its postgresUser and postgresDatabase
 * (issue 17.5). Under mocks, the stack's last outputs are what the StackReference to itself reads.
 */
import * as assert from "node:assert";
import { IDENTITY_OUTPUT, identityChangeError } from "../components/database-identity";
import { evaluate, type ProgramResource } from "./helpers/program";

const DEPLOYED = { [IDENTITY_OUTPUT]: { user: "stateful-flask-user", database: "stateful-flask-db" } };

/** Evaluates the dev stack with `overrides` on a stack whose last update exported `previous`; the error, if any. */
async function refusal(
    overrides: Record<string, string>,
    previous: Record<string, unknown>,
): Promise<{ message: string; registered: ProgramResource[] } | undefined> {
    try {
        await evaluate("dev", overrides, false, previous);
        return undefined;
    } catch (err: any) {
        return { message: err.message, registered: err.registered };
    }
}

describe("database identity: postgresUser and postgresDatabase never change under an existing database", () => {
    it("exports the names it deployed, for the next update to compare with", async () => {
        const run = await evaluate("dev", { "stateful-flask:postgresUser": "app" });
        assert.deepStrictEqual(run.exports[IDENTITY_OUTPUT], { user: "app", database: "stateful-flask-db" });
    });

    it("deploys the same names again, and any names on a stack without the output (new, or deployed by an older program)", async () => {
        assert.strictEqual(await refusal({}, DEPLOYED), undefined);
        assert.strictEqual(
            await refusal({ "stateful-flask:postgresUser": "app", "stateful-flask:postgresDatabase": "tasks" }, {}),
            undefined,
        );
        assert.strictEqual(
            await refusal({ "stateful-flask:postgresUser": "app" }, { apiUrl: "http://drexii.me" }),
            undefined,
        );
    });

    it("refuses a changed postgresUser before registering anything, naming the key, both values and the command that undoes it", async () => {
        const r = await refusal({ "stateful-flask:postgresUser": "app" }, DEPLOYED);
        assert.ok(r, "the change was accepted");
        assert.strictEqual(
            r.message,
            "postgresUser is 'app', but this stack's database was created with 'stateful-flask-user'. The application's role " +
                "and database are created only when the cluster is first initialised, and the database admits only the configured " +
                "names: deploying this would lock the API out of its data. Nothing was changed. Allowed: the names the database " +
                "has (pulumi config set postgresUser stateful-flask-user); other names only for a new database (pulumi destroy, " +
                'or a new stack; README, "Configuration").',
        );
        assert.deepStrictEqual(
            r.registered.filter((x) => x.type !== "pulumi:pulumi:Stack"),
            [],
        );
    });

    it("refuses a changed postgresDatabase, and both at once with both undo commands", async () => {
        const db = await refusal({ "stateful-flask:postgresDatabase": "tasks" }, DEPLOYED);
        assert.match(
            db?.message ?? "",
            /^postgresDatabase is 'tasks', but this stack's database was created with 'stateful-flask-db'\. /,
        );
        assert.deepStrictEqual(
            db?.registered.filter((x) => x.type !== "pulumi:pulumi:Stack"),
            [],
        );
        const both = await refusal(
            { "stateful-flask:postgresUser": "app", "stateful-flask:postgresDatabase": "tasks" },
            DEPLOYED,
        );
        assert.match(
            both?.message ?? "",
            /^postgresUser is 'app', but .*'stateful-flask-user'; postgresDatabase is 'tasks', but .*'stateful-flask-db'\. /,
        );
        assert.match(
            both?.message ?? "",
            /\(pulumi config set postgresUser stateful-flask-user && pulumi config set postgresDatabase stateful-flask-db\)/,
        );
    });

    it("reads a secret output like a plain one, and ignores an output of another shape", () => {
        assert.strictEqual(identityChangeError(undefined, { user: "a", database: "b" }), undefined);
        assert.strictEqual(identityChangeError("a/b", { user: "a", database: "c" }), undefined);
        assert.strictEqual(identityChangeError({ user: "a" }, { user: "x", database: "c" }), undefined);
        assert.match(
            identityChangeError({ user: "a", database: "b" }, { user: "a", database: "c" }) ?? "",
            /^postgresDatabase is 'c'/,
        );
    });
});
