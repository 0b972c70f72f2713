// Lints the repository's Python with ruff, at the settings in ruff.toml. Ruff runs as its WebAssembly build, the npm
// package @astral-sh/ruff-wasm-nodejs (pinned in package.json, installed by npm ci): Debian bookworm and trixie ship
// no ruff (docs/decisions.md). Prints one line per finding, `path:line:column: CODE message`, and exits 1 on any.
//
//   node scripts/lint/ruff.js [FILE...]   (default: every Python file git tracks or would track)
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PositionEncoding, Workspace } = require("@astral-sh/ruff-wasm-nodejs");

const root = path.resolve(__dirname, "../..");

/** ruff.toml as the object Workspace takes (ruff.toml's own keys); read with Python's tomllib, which 3.11 has. */
function settings() {
    const read = "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))";
    return JSON.parse(execFileSync("python3", ["-c", read, path.join(root, "ruff.toml")], { encoding: "utf8" }));
}

function pythonFiles() {
    const out = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.py"], {
        cwd: root,
        encoding: "utf8",
    });
    return out.split("\0").filter((f) => f !== "" && fs.existsSync(path.join(root, f)));
}

const files = process.argv.length > 2 ? process.argv.slice(2) : pythonFiles();
const workspace = new Workspace(settings(), PositionEncoding.Utf16);
let findings = 0;
for (const file of files) {
    for (const d of workspace.check(fs.readFileSync(path.resolve(root, file), "utf8"))) {
        findings++;
        const { row, column } = d.start_location;
        console.log(`${file}:${row}:${column}: ${d.code ?? "syntax"} ${d.message}`);
    }
}
console.log(`ruff ${Workspace.version()}: ${files.length} files, ${findings} finding${findings === 1 ? "" : "s"}`);
process.exitCode = findings === 0 ? 0 : 1;
