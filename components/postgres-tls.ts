/**
 * TLS material for PostgreSQL: a CA and a server certificate for the database's Service and pod names, derived
 * deterministically from one secret seed (a protected RandomPassword, or a stack secret). Deterministic, so every
 * `pulumi up` produces the same bytes and nothing rolls unless the seed or the names change; no provider plugin is
 * needed (pulumi-tls cannot be built here: the module proxy refuses it, docs/decisions.md).
 *
 * ECDSA P-256 with SHA-256: the signature's hash is what SCRAM channel binding (tls-server-end-point, RFC 5929)
 * hashes the server certificate with, so libpq's channel_binding=require works (an Ed25519-signed certificate has
 * no such hash: libpq fails with "could not find digest for NID UNDEF"). ECDSA signatures need a nonce; RFC 6979
 * derives it from the key and the message, which @noble/curves (audited) implements, so the same input gives the
 * same signature. The private scalars are derived from the seed with HMAC-SHA256; the X.509 structures are written
 * here in DER and checked with OpenSSL in tests/postgres-tls.spec.ts.
 */
import * as crypto from "node:crypto";
import { p256 } from "@noble/curves/nist";
import { sha256 } from "@noble/hashes/sha2";

/** The material a server and its clients need, PEM. */
export interface TlsMaterial {
    readonly caCert: string;
    readonly cert: string;
    readonly key: string;
}

// ------------------------------------------------------------------------------------------------ DER

function length(n: number): Buffer {
    if (n < 0x80) return Buffer.from([n]);
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]) => {
    const body = Buffer.concat(content);
    return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const explicit = (n: number, b: Buffer) => tlv(0xa0 + n, b);
const integer = (b: Buffer) => tlv(0x02, b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
const utcTime = (s: string) => tlv(0x17, Buffer.from(s, "ascii"));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));

function oid(dotted: string): Buffer {
    const parts = dotted.split(".").map(Number);
    const out = [40 * parts[0] + parts[1]];
    for (const p of parts.slice(2)) {
        const chunk: number[] = [];
        let v = p;
        do {
            chunk.unshift(v & 0x7f);
            v = Math.floor(v / 128);
        } while (v > 0);
        for (let i = 0; i < chunk.length - 1; i++) chunk[i] |= 0x80;
        out.push(...chunk);
    }
    return tlv(0x06, Buffer.from(out));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const EC_P256_KEY = seq(oid("1.2.840.10045.2.1"), oid("1.2.840.10045.3.1.7"));
const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const extension = (id: string, value: Buffer, critical = false) =>
    seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

// ------------------------------------------------------------------------------------------------ keys

function derive(seed: string, label: string): Buffer {
    return crypto.createHmac("sha256", seed).update(`stateful-flask postgres tls: ${label}`).digest();
}

interface KeyPair {
    /** The private scalar. */
    readonly d: bigint;
    /** The uncompressed public point (65 bytes). */
    readonly point: Buffer;
    /** SubjectPublicKeyInfo, DER. */
    readonly spki: Buffer;
}

const b64url = (b: Buffer | Uint8Array) => Buffer.from(b).toString("base64url");

function keyPair(seed: string, label: string): KeyPair {
    // 384 bits reduced into [1, n-1] (FIPS 186-5 A.2.1): no measurable bias.
    const wide = Buffer.concat([derive(seed, `${label} 1`), derive(seed, `${label} 2`).subarray(0, 16)]);
    const n = p256.CURVE.n;
    const d = (BigInt(`0x${wide.toString("hex")}`) % (n - 1n)) + 1n;
    const point = Buffer.from(p256.getPublicKey(d, false));
    return { d, point, spki: seq(EC_P256_KEY, bits(point)) };
}

/** The private key as PKCS#8 PEM (what PostgreSQL's ssl_key_file reads). */
function privateKeyPem(k: KeyPair): string {
    const d = Buffer.from(k.d.toString(16).padStart(64, "0"), "hex");
    const jwk = {
        kty: "EC",
        crv: "P-256",
        d: b64url(d),
        x: b64url(k.point.subarray(1, 33)),
        y: b64url(k.point.subarray(33)),
    };
    return crypto.createPrivateKey({ key: jwk, format: "jwk" }).export({ format: "pem", type: "pkcs8" }) as string;
}

function serial(seed: string, label: string): Buffer {
    const b = derive(seed, `serial ${label}`).subarray(0, 16);
    b[0] = (b[0] & 0x7f) | 0x40;
    return b;
}

// ------------------------------------------------------------------------------------------------ certificates

/** Not before 2026-01-01, not after 2046-01-01: fixed, so the bytes do not depend on when `up` runs. */
const VALIDITY = seq(utcTime("260101000000Z"), utcTime("460101000000Z"));

function certificate(tbs: Buffer, signer: KeyPair): string {
    // RFC 6979: the nonce comes from the key and the digest, so the signature is the same on every evaluation.
    const signature = Buffer.from(p256.sign(sha256(tbs), signer.d).toDERRawBytes());
    const der = seq(tbs, ECDSA_SHA256, bits(signature));
    return `-----BEGIN CERTIFICATE-----\n${(der.toString("base64").match(/.{1,64}/g) ?? []).join("\n")}\n-----END CERTIFICATE-----\n`;
}

/**
 * The CA and a server certificate for `dnsNames` (and `ipAddresses`), from `seed`. Same inputs, same bytes.
 */
export function tlsMaterial(
    seed: string,
    dnsNames: readonly string[],
    ipAddresses: readonly string[] = [],
): TlsMaterial {
    if (seed.length < 16) throw new Error("the TLS seed must be at least 16 characters");
    if (dnsNames.length === 0 && ipAddresses.length === 0)
        throw new Error("a server certificate needs at least one name");
    const ca = keyPair(seed, "ca");
    const server = keyPair(seed, "server");
    // Key identifiers: SHA-1 of the public key (RFC 5280 4.2.1.2, method 1).
    const caId = crypto.createHash("sha1").update(ca.point).digest();
    const serverId = crypto.createHash("sha1").update(server.point).digest();

    const caTbs = seq(
        explicit(0, integer(Buffer.from([2]))),
        integer(serial(seed, "ca")),
        ECDSA_SHA256,
        name("stateful-flask postgres CA"),
        VALIDITY,
        name("stateful-flask postgres CA"),
        ca.spki,
        explicit(
            3,
            seq(
                extension("2.5.29.19", seq(bool(true)), true),
                // keyCertSign, cRLSign
                extension("2.5.29.15", bits(Buffer.from([0x06]), 1), true),
                extension("2.5.29.14", octets(caId)),
            ),
        ),
    );

    const sans = [
        ...dnsNames.map((n) => tlv(0x82, Buffer.from(n, "ascii"))),
        ...ipAddresses.map((ip) => tlv(0x87, Buffer.from(ip.split(".").map(Number)))),
    ];
    const serverTbs = seq(
        explicit(0, integer(Buffer.from([2]))),
        integer(serial(seed, "server")),
        ECDSA_SHA256,
        name("stateful-flask postgres CA"),
        VALIDITY,
        name(dnsNames[0] ?? ipAddresses[0]),
        server.spki,
        explicit(
            3,
            seq(
                extension("2.5.29.19", seq(), true),
                // digitalSignature (ECDHE key exchange is signed)
                extension("2.5.29.15", bits(Buffer.from([0x80]), 7), true),
                // serverAuth
                extension("2.5.29.37", seq(oid("1.3.6.1.5.5.7.3.1"))),
                extension("2.5.29.17", seq(...sans)),
                extension("2.5.29.14", octets(serverId)),
                extension("2.5.29.35", seq(tlv(0x80, caId))),
            ),
        ),
    );

    return {
        caCert: certificate(caTbs, ca),
        cert: certificate(serverTbs, ca),
        key: privateKeyPem(server),
    };
}

/** The names a client may use for the database: its Services and its pods (through the headless Service). */
export function postgresDnsNames(
    namespace: string,
    services: { primary: string; readOnly: string; headless: string },
): string[] {
    const forms = (svc: string) => [
        `${svc}.${namespace}.svc.cluster.local`,
        `${svc}.${namespace}.svc`,
        `${svc}.${namespace}`,
    ];
    return [
        ...forms(services.primary),
        ...forms(services.readOnly),
        ...forms(services.headless),
        `*.${services.headless}.${namespace}.svc.cluster.local`,
        `*.${services.headless}.${namespace}.svc`,
    ];
}
