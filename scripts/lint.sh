#!/usr/bin/env bash
# npm run lint (and so npm test): every linter, each printing its findings, and a non-zero exit when any finds one.
#   - TypeScript and JavaScript (JSON is parsed, not formatted): Biome (biome.jsonc), its recommended rules with
#     warnings counted as errors, and its formatter's check (the code as `biome format --write .` would leave it);
#   - Python: ruff (ruff.toml), through scripts/lint/ruff.js;
#   - shell: shellcheck at its default severity, following `source`d files (-x): every *.sh and every file that
#     starts with a bash or sh shebang.
# All three run whatever the others found. Biome and ruff are pinned in package.json (npm ci), shellcheck in
# scripts/lint-packages.txt (npm run setup).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

failed=()
run() { # run NAME CMD...: runs CMD, remembers NAME when it fails
    local name=$1
    shift
    echo "[lint] $name"
    "$@" || failed+=("$name")
}

[[ -x node_modules/.bin/biome ]] || { echo "[lint] node_modules/.bin/biome is missing: run npm ci" >&2; exit 1; }
colors=()
[[ -t 1 ]] || colors=(--colors=off) # plain text in CI's log
run "biome" node_modules/.bin/biome ci --error-on-warnings --max-diagnostics=100 "${colors[@]}" .

run "ruff" node scripts/lint/ruff.js

shellcheck_files() {
    local f
    while IFS= read -r -d '' f; do
        [[ -f "$f" ]] || continue
        if [[ "$f" == *.sh ]] || head -n 1 "$f" | grep -qE '^#!.*[/ ](ba)?sh$'; then printf '%s\0' "$f"; fi
    done < <(git ls-files --cached --others --exclude-standard -z)
}
pinned=$(sed -n 's/^shellcheck=//p' scripts/lint-packages.txt)
have=$(dpkg-query -W -f='${Version}' shellcheck 2>/dev/null || true)
if [[ "$have" != "$pinned" ]]; then
    echo "[lint] shellcheck ${have:-is not installed}${have:+ is installed}; the pinned version is $pinned (scripts/lint-packages.txt): run npm run setup" >&2
    failed+=("shellcheck")
else
    mapfile -d '' files < <(shellcheck_files)
    echo "[lint] shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#files[@]} files"
    run "shellcheck" shellcheck -x --source-path=SCRIPTDIR "${files[@]}"
fi

if ((${#failed[@]} > 0)); then
    echo "[lint] failed: ${failed[*]}" >&2
    exit 1
fi
echo "[lint] biome, ruff and shellcheck found nothing"
