#!/usr/bin/env bash
# Before/after: the throughput bench of an earlier commit against this tree's, in one session.
#
#   bash benches/before_after.sh <commit> [rounds]     (default: 3 rounds)
#
# Builds both benches (the earlier one in a worktree under target/before-after, with a target
# dir of its own), then alternates them, one round of every cell each, `rounds` times, so that
# load from other processes falls on both alike. Prints every cell's median round for each side
# and the ratio after/before, as a Markdown table. VLIVE_BENCH_ONLY and VLIVE_BENCH_QUICK pass
# through to both. Cells only one side has (a workload or an implementation added since) show
# a dash on the other.
set -euo pipefail

base=${1:?usage: benches/before_after.sh <commit> [rounds]}
rounds=${2:-3}
root=$(git rev-parse --show-toplevel)
scratch=$root/target/before-after
tree=$scratch/tree

# The path of the throughput bench's executable, built in the current directory.
bench_binary() {
  cargo bench --bench throughput --no-run --message-format=json "$@" 2>/dev/null |
    grep '"executable":"[^"]' | grep '"name":"throughput"' | tail -1 |
    sed 's/.*"executable":"\([^"]*\)".*/\1/'
}

mkdir -p "$scratch"
if [ -d "$tree" ]; then
  git -C "$tree" checkout -q --detach "$base"
else
  git worktree add -q --detach "$tree" "$base"
fi
before=$(cd "$tree" && CARGO_TARGET_DIR=$scratch/target bench_binary)
after=$(cd "$root" && bench_binary)
[ -x "$before" ] && [ -x "$after" ] || { echo "could not build both benches" >&2; exit 1; }
echo "before: $base ($before)"
echo "after:  $(git -C "$root" describe --always --dirty) ($after)"

log=$scratch/rounds.txt
: >"$log"
for round in $(seq "$rounds"); do
  for side in before after; do
    echo "round $round of $rounds: $side" >&2
    binary=$before
    [ "$side" = after ] && binary=$after
    # Cell lines look like "  put-burst   64 tasks  vlive-lazy   21,883 ops/s  (mean batch 2.2)".
    VLIVE_BENCH_ROUNDS=1 "$binary" --bench 2>&1 |
      awk -v side="$side" '/ tasks  .* ops\/s/ {
        n = split($0, f, /  +/); tasks = f[3]; sub(/ tasks/, "", tasks)
        ops = f[5]; sub(/ ops\/s.*/, "", ops); gsub(/,/, "", ops)
        print side "\t" f[2] "\t" tasks "\t" f[4] "\t" ops }' >>"$log"
  done
done

# Medians per cell and side, then one row per cell.
awk -F'\t' '
  { key = $2 "\t" $3 "\t" $4; v[key, $1, ++n[key, $1]] = $5; if (!(key in seen)) { seen[key] = 1; order[++cells] = key } }
  function median(key, side,   k, i, j, t, a) {
    k = n[key, side]; if (!k) return ""
    for (i = 1; i <= k; i++) a[i] = v[key, side, i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((k + 1) / 2)]
  }
  END {
    print "| workload | tasks | implementation | before | after | after/before |"
    print "|---|---:|---|---:|---:|---:|"
    for (c = 1; c <= cells; c++) {
      split(order[c], f, "\t"); b = median(order[c], "before"); a = median(order[c], "after")
      ratio = (b != "" && a != "" && b > 0) ? sprintf("%.2f×", a / b) : "—"
      printf "| %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], (b == "" ? "—" : b), (a == "" ? "—" : a), ratio
    }
  }' "$log"
