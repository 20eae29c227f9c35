#!/usr/bin/env bash
# Shows that every loom model can fail: plants one known bug at a time and runs the model meant
# to catch it. Exits non-zero if any planted bug survives, or if a patch no longer applies.
#
#   bash loom-tests/mutants.sh            # from the repository root
#
# Each bug is a patch in loom-tests/mutants/<name>.patch whose header names the model that must
# catch it ("Caught by: <model>"). The patches are applied to a scratch copy of the tree, so the
# production source carries no trace of them. When a change to the code makes a patch stale,
# plant the bug again by hand in the new code and save `git diff` of it over the old patch.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The tree as it is now (uncommitted edits included), without build output or history.
tar --exclude=./target --exclude=./.git -cf - . | tar -xf - -C "$scratch"

export RUSTFLAGS="--cfg loom"
# A target dir of the mutants' own: dependencies built once serve every mutant. Not the ordinary
# loom build's (target/loom): cargo fingerprints a workspace member by paths relative to the
# workspace and by mtimes, and tar keeps the tree's mtimes, so a build of the scratch copy would
# replace target/loom's artifacts with the last mutant's and the next ordinary run would reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/loom-mutants}"
# Seeded from the ordinary loom build when there is one: the dependencies are the same.
if [ ! -d "$CARGO_TARGET_DIR" ] && [ -d "$root/target/loom" ]; then
  cp -a "$root/target/loom" "$CARGO_TARGET_DIR"
fi
# Each mutant changes one function of vlive: an incremental release build recompiles about 6 s
# of it instead of 13 s (measured on 2 cores), the bulk of a mutant's time.
export CARGO_PROFILE_RELEASE_INCREMENTAL=true

survivors=0
patches=("$root"/loom-tests/mutants/*.patch)
for patch in "${patches[@]}"; do
  mutant="$(basename "$patch" .patch)"
  model="$(sed -n 's/^Caught by: *//p' "$patch")"
  if [ -z "$model" ] || ! (cd "$scratch" && git apply --check "$patch" 2>/dev/null); then
    printf 'STALE     %-26s the patch no longer applies (or names no model); plant it again\n' "$mutant"
    survivors=$((survivors + 1))
    continue
  fi
  (cd "$scratch" && git apply "$patch")
  log="$(mktemp)"
  started=$(date +%s)
  (cd "$scratch" && cargo test -q -p loom-tests --release --test protocol -- --exact "$model") \
    >"$log" 2>&1
  status=$?
  elapsed=$(( $(date +%s) - started ))
  (cd "$scratch" && git apply -R "$patch")
  # Caught means: the model failed because of the bug, i.e. its first panic is one of the
  # model's assertions or loom's deadlock detector (a hang). Loom may abort while cleaning up
  # after that first panic, so the exit code alone is not the verdict.
  first_panic=$(grep -m1 -A1 "panicked at" "$log" | tr '\n' ' ')
  if [ $status -ne 0 ] && echo "$first_panic" | grep -qE "tests/protocol.rs|deadlock"; then
    reason=$(echo "$first_panic" | sed -E 's/.*panicked at [^ ]*(protocol.rs:[0-9]+|execution.rs:[0-9]+):[0-9]+: *//' | cut -c1-90)
    printf 'caught    %-26s by %-58s (%3ds) %s\n' "$mutant" "$model" "$elapsed" "$reason"
  else
    printf 'SURVIVED  %-26s by %-58s (%3ds)\n' "$mutant" "$model" "$elapsed"
    tail -20 "$log"
    survivors=$((survivors + 1))
  fi
  rm -f "$log"
done

if [ $survivors -ne 0 ]; then
  echo "$survivors planted bug(s) went unnoticed by loom, or their patches are stale"
  exit 1
fi
echo "every planted bug was caught (${#patches[@]} mutants)"
