#!/usr/bin/env bash
# Instructions per cache hit through the app's default chain, by callgrind
# (counts instructions: the same on a busy machine), for each checkout given
# (default: this one): total instructions at 40k and at 20k queries, the
# difference divided by 20k. See chain-instructions.mjs.
#   flock /tmp/heimdall-load.lock bash bench/load/chain-instructions.sh [repo…]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 0 ] && set -- "$(cd "$here/../.." && pwd)"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
count() { # repo n → total instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" node --single-threaded --max-semi-space-size=4 "$here/chain-instructions.mjs" "$2" "$1" >/dev/null 2>"$out/log"
  grep -m1 '^summary:' "$out/cg" | awk '{print $2}'
}
for repo in "$@"; do
  a=$(count "$repo" 20000)
  b=$(count "$repo" 40000)
  echo "$repo: $(( (b - a) / 20000 )) instructions per query (callgrind, 20k queries by difference)"
done
