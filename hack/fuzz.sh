#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 30s), seed
# corpora (testdata/fuzz/<Target>) first, and prints the executions of each target.
# Minimizing is bounded (FUZZMINIMIZETIME, default 2s): targets that talk HTTP to a fake
# have slightly varying coverage, and the default minute spent minimizing each
# "interesting" input would eat the fuzzing time.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
minimize="${FUZZMINIMIZETIME:-2s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
count=0
total=0
summary=()
while read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    echo "==> $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1 | tee "$log"
    execs="$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)"
    summary+=("$(printf '%-34s %-24s %12s execs' "$pkg" "$target" "${execs:-0}")")
    total=$((total + ${execs:-0}))
    count=$((count + 1))
  done
done < <(git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' || true)
printf '%s\n' "${summary[@]}"
echo "fuzz: $count targets ran for $fuzztime each, $total executions"
