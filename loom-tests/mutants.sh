#!/usr/bin/env bash
# Shows that every loom model can fail: plants one known bug at a time (VLIVE_LOOM_MUTANT, see
# build.rs) and runs the model meant to catch it. Exits non-zero if any planted bug survives.
#
#   bash loom-tests/mutants.sh            # from the repository root
set -uo pipefail
cd "$(dirname "$0")/.."

# planted bug : the model that must catch it
MUTANTS=(
  "skip_sender_count:every_command_gets_exactly_one_reply"
  "reads_first:read_your_writes_across_handles"
  "drop_queued_on_disconnect:last_handle_drop_drains_then_exits"
  "skip_leftover_check:close_racing_a_put_never_loses_or_hangs_it"
  "reply_before_commit:no_acknowledgement_before_commit"
  "fail_only_first:failed_commit_fails_its_whole_batch_and_the_actor_goes_on"
  "no_stale_check:a_fill_never_lands_after_an_invalidation_it_predates"
  "ignore_in_flight:read_your_writes_across_handles"
  "settle_before_commit:read_your_writes_across_handles"
  "settle_after_reply:every_command_gets_exactly_one_reply"
  "no_snapshot_after_commit:read_your_writes_across_handles"
  "close_before_withdraw:close_waits_for_lookups_beside_the_actor"
)

export RUSTFLAGS="--cfg loom"
survivors=0
for entry in "${MUTANTS[@]}"; do
  mutant="${entry%%:*}"
  model="${entry##*:}"
  log="$(mktemp)"
  started=$(date +%s)
  VLIVE_LOOM_MUTANT="$mutant" cargo test -q -p loom-tests --release --test protocol -- \
    --exact "$model" >"$log" 2>&1
  status=$?
  elapsed=$(( $(date +%s) - started ))
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
  echo "$survivors planted bug(s) went unnoticed by loom"
  exit 1
fi
echo "every planted bug was caught (${#MUTANTS[@]} mutants)"
