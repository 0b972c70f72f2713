import * as assert from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { postgresDnsNames, tlsMaterial } from "../components/postgres-tls";

const NAMES = postgresDnsNames("postgres", {
    primary: "postgres",
    readOnly: "postgres-ro",
    headless: "postgres-headless",
});
const SEED = "a-seed-of-enough-length-0123456789";

/** Writes the material to a temp dir for openssl. */
function files(m = tlsMaterial(SEED, NAMES)): { dir: string; ca: string; cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tls-"));
    const out = { dir, ca: path.join(dir, "ca.crt"), cert: path.join(dir, "tls.crt"), key: path.join(dir, "tls.key") };
    fs.writeFileSync(out.ca, m.caCert);
    fs.writeFileSync(out.cert, m.cert);
    fs.writeFileSync(out.key, m.key);
    return out;
}

describe("Postgres TLS material (components/postgres-tls.ts), checked with OpenSSL", () => {
    it("names the read-write, read-only and headless Services and every pod behind the headless Service", () => {
        assert.deepStrictEqual(NAMES, [
            "postgres.postgres.svc.cluster.local",
            "postgres.postgres.svc",
            "postgres.postgres",
            "postgres-ro.postgres.svc.cluster.local",
            "postgres-ro.postgres.svc",
            "postgres-ro.postgres",
            "postgres-headless.postgres.svc.cluster.local",
            "postgres-headless.postgres.svc",
            "postgres-headless.postgres",
            "*.postgres-headless.postgres.svc.cluster.local",
            "*.postgres-headless.postgres.svc",
        ]);
    });

    it("makes a CA and a server certificate that OpenSSL verifies, for exactly those names, for server authentication", () => {
        const f = files();
        assert.strictEqual(
            execFileSync("openssl", ["verify", "-CAfile", f.ca, f.cert], { encoding: "utf8" }).trim(),
            `${f.cert}: OK`,
        );
        const text = execFileSync("openssl", ["x509", "-in", f.cert, "-noout", "-text"], { encoding: "utf8" });
        assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
        assert.match(text, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
        assert.match(text, /CA:FALSE/);
        assert.match(text, /TLS Web Server Authentication/);
        const sans = /X509v3 Subject Alternative Name: \n\s+(.*)/.exec(text)![1].split(", ");
        assert.deepStrictEqual(
            sans,
            NAMES.map((n) => `DNS:${n}`),
        );
        assert.match(
            execFileSync("openssl", ["x509", "-in", f.ca, "-noout", "-text"], { encoding: "utf8" }),
            /CA:TRUE/,
        );
        // The key belongs to the certificate.
        const pub = (args: string[]) => execFileSync("openssl", args, { encoding: "utf8" });
        assert.strictEqual(pub(["pkey", "-in", f.key, "-pubout"]), pub(["x509", "-in", f.cert, "-noout", "-pubkey"]));
        fs.rmSync(f.dir, { recursive: true });
    });

    it("verifies the host names a client dials, and not others (openssl verify_hostname)", () => {
        const f = files(tlsMaterial(SEED, NAMES, ["127.0.0.1"]));
        const verify = (flag: string, value: string) =>
            spawnSync("openssl", ["verify", "-CAfile", f.ca, flag, value, f.cert], { encoding: "utf8" }).status;
        assert.strictEqual(verify("-verify_hostname", "postgres.postgres.svc.cluster.local"), 0);
        assert.strictEqual(verify("-verify_hostname", "postgres-1.postgres-headless.postgres.svc.cluster.local"), 0);
        assert.strictEqual(verify("-verify_ip", "127.0.0.1"), 0);
        assert.notStrictEqual(verify("-verify_hostname", "evil.example.org"), 0);
        assert.notStrictEqual(verify("-verify_hostname", "postgres.other-namespace.svc.cluster.local"), 0);
        fs.rmSync(f.dir, { recursive: true });
    });

    it("is deterministic: the same seed and names give the same bytes; another seed gives another CA", () => {
        assert.deepStrictEqual(tlsMaterial(SEED, NAMES), tlsMaterial(SEED, NAMES));
        const other = tlsMaterial(`${SEED}-2`, NAMES);
        assert.notStrictEqual(other.caCert, tlsMaterial(SEED, NAMES).caCert);
        const f = files(other);
        const g = files();
        assert.notStrictEqual(
            spawnSync("openssl", ["verify", "-CAfile", g.ca, f.cert]).status,
            0,
            "a certificate from another seed does not verify against this CA",
        );
        fs.rmSync(f.dir, { recursive: true });
        fs.rmSync(g.dir, { recursive: true });
    });

    it("refuses a short seed and a certificate without names", () => {
        assert.throws(() => tlsMaterial("short", NAMES), /at least 16 characters/);
        assert.throws(() => tlsMaterial(SEED, []), /at least one name/);
    });
});
