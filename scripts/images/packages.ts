/**
 * The Debian package pins of an image (images/<name>/packages.txt) and the versions installed on this machine,
 * so that each image's tests can fail when what they run differs from what the image ships.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

/** name -> version, from a packages.txt ("name=version" per line, # comments). */
export function pinnedPackages(file: string): Record<string, string> {
    const pins: Record<string, string> = {};
    for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        if (line === "") continue;
        const m = /^([a-z0-9][a-z0-9+.-]+)=(\S+)$/.exec(line);
        if (!m) throw new Error(`${file}: "${line}" is not an exact pin (name=version)`);
        pins[m[1]] = m[2];
    }
    return pins;
}

/** name -> installed version (undefined when not installed), from dpkg. */
export function installedVersions(names: readonly string[]): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const name of names) {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields
        const r = spawnSync("dpkg-query", ["-W", "-f=${Status} ${Version}", name], { encoding: "utf8" });
        const m = /^install ok installed (\S+)$/.exec(r.stdout.trim());
        out[name] = m ? m[1] : undefined;
    }
    return out;
}
