#!/usr/bin/env bash
# Instructions per span lifecycle, spanlab against the registry with an empty layer,
# counted by callgrind (layer/benches/lifecycle_instructions.rs says what is run).
#
#   bash scripts/callgrind-lifecycle.sh [N]
#
# Each subscriber runs twice, with 0 and N lifecycles after the same warm-up; the
# difference divided by N is what one lifecycle costs, start-up and calibration
# cancelled out. Needs valgrind (`apt-get install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200000}"
cargo bench -p spanlab --bench lifecycle_instructions --no-run --quiet 2>/dev/null
bin=$(cargo bench -p spanlab --bench lifecycle_instructions --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "lifecycle_instructions" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # variant lifecycles -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>"$out/log"
    sed -n 's/^summary: //p' "$out/cg"
}
declare -A per
for variant in empty spanlab fields export; do
    base=$(count "$variant" 0)
    full=$(count "$variant" "$n")
    per[$variant]=$(( (full - base) / n ))
    echo "$variant: $(( full - base )) instructions over $n lifecycles = ${per[$variant]} per lifecycle"
done
echo "spanlab adds $(( per[spanlab] - per[empty] )) instructions per lifecycle to the registry with an empty layer; recording open-span fields, $(( per[fields] - per[empty] )); exporting, $(( per[export] - per[empty] ))"
