#!/usr/bin/env bash
# Instructions per cache hit through the app's default chain, by callgrind
# (counts instructions: the same on a busy machine), for each checkout given
# (default: this one). Only the measured loop of chain-instructions.mjs is
# counted (callgrind collects inside Array.prototype.reduceRight, which wraps
# it), with V8's hash and random seeds fixed: two runs agree to ~0.3 %.
# `--top N` also prints the N functions that cost most, JavaScript ones named
# from V8's perf map (--perf-basic-prof), in instructions per query.
# `ONLY=cache,stats` in the environment measures a subset of the chain.
#   flock /tmp/heimdall-load.lock bash bench/load/chain-instructions.sh [--top N] [repo…]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top=0
if [ "${1:-}" = "--top" ]; then top=$2; shift 2; fi
[ $# -eq 0 ] && set -- "$(cd "$here/../.." && pwd)"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
n=20000
for repo in "$@"; do
  repo="$(cd "$repo" && pwd)"
  # In the temp dir: --perf-basic-prof also writes an isolate-*.log where node runs.
  (cd "$out" && CG=1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=Builtins_ArrayReduceRight \
    --callgrind-out-file="$out/cg" node --expose-gc --perf-basic-prof --hash-seed=1 --random-seed=1 --single-threaded \
    --max-semi-space-size=4 "$here/chain-instructions.mjs" "$n" "$repo" >/dev/null 2>"$out/log")
  total=$(grep -m1 '^summary:' "$out/cg" | awk '{print $2}')
  echo "$repo: $(( total / n )) instructions per query (callgrind, ${ONLY:-the default chain}, $n queries)"
  if [ "$top" -gt 0 ]; then
    pid=$(grep -m1 '^pid:' "$out/cg" | awk '{print $2}')
    callgrind_annotate "$out/cg" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n "2,$((top + 1))p" \
      | node "$here/lib/perf-map-names.mjs" "/tmp/perf-$pid.map" "$n"
    rm -f "/tmp/perf-$pid.map"
  fi
done
