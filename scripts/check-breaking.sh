#!/usr/bin/env bash
# Fails when proto/ (as it is in the working tree, committed or not) breaks the
# schema of the commit this work builds on: `buf breaking` with buf.yaml's
# FILE rules, against the merge base with origin/main (or main) when HEAD is
# ahead of it, else against HEAD~1. A checkout with no git history to compare
# with (no .git, a first commit, a --depth 1 clone) skips with a message.
#
#   scripts/check-breaking.sh [REPO]   # REPO defaults to this checkout
#   RIVULET_BREAKING_AGAINST=<ref>     # compare with this commit instead
#
# The old schema comes from `git archive`, so this works in git worktrees and
# needs no network: only the local buf from node_modules.
set -euo pipefail
buf="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin/buf"
cd "${1:-$(dirname "$0")/..}"

skip() {
  echo "buf breaking: skipped: $1" >&2
  exit 0
}

top=$(git rev-parse --show-toplevel 2>/dev/null || true)
[ "$top" = "$(pwd -P)" ] || skip "$(pwd) is not the top of a git checkout, so there is no previous schema to compare with"
git rev-parse -q --verify 'HEAD^{commit}' >/dev/null || skip "the repository has no commit yet"

against="${RIVULET_BREAKING_AGAINST:-}"
if [ -z "$against" ]; then
  head=$(git rev-parse HEAD)
  for upstream in origin/main main; do
    git rev-parse -q --verify "$upstream^{commit}" >/dev/null || continue
    base=$(git merge-base HEAD "$upstream" 2>/dev/null || true)
    # On main itself (or behind it) the merge base is HEAD: use HEAD~1 below.
    if [ -n "$base" ] && [ "$base" != "$head" ]; then against=$base; fi
    break
  done
fi
if [ -z "$against" ]; then
  git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null ||
    skip "HEAD has no parent commit (a first commit, or a shallow clone: fetch more history to check)"
  against=HEAD~1
fi
git cat-file -e "$against:proto" 2>/dev/null || skip "$against has no proto/ to compare with"

old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$against" -- proto | tar -x -C "$old"
# The module layout (buf.yaml) of that commit, or today's if it had none.
if git cat-file -e "$against:buf.yaml" 2>/dev/null; then git show "$against:buf.yaml" >"$old/buf.yaml"; else cp buf.yaml "$old/buf.yaml"; fi

described=$(git log -1 --format='%h %s' "$against")
if ! "$buf" breaking --against "$old"; then
  echo "buf breaking: proto/ breaks the schema of $described; add fields and messages instead of renaming or renumbering (docs/development.md)" >&2
  exit 1
fi
echo "buf breaking: proto/ is compatible with $described"
