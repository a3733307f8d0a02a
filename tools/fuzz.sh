#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time and keeps any crash as a regression
# input.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]    default: 60 s for each of fuzz/fuzz_targets/*
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz
# from crates.io when it is missing. The corpus lives in fuzz/corpus/<target>
# (git-ignored, kept between runs) and is seeded from fixtures/fuzz/<target>, which
# holds hand-written cases and every crash found so far. A crash, timeout (> 10 s for
# one input) or out-of-memory input is copied to fixtures/fuzz/<target>/, where
# tests/it/fuzz_regressions.rs replays it on stable in every test run; the script then
# exits 1. The last lines give the executions per target.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
SECS=${1:-60}
shift || true
[[ $SECS =~ ^[0-9]+$ && $SECS -gt 0 ]] || {
  echo "usage: tools/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
}

rustup toolchain list 2>/dev/null | grep -q '^nightly' || {
  echo "tools/fuzz.sh: no nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> cargo install cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

cd "$REPO/fuzz"
if (($# > 0)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

echo "==> building ${TARGETS[*]}" >&2
for t in "${TARGETS[@]}"; do
  cargo +nightly fuzz build "$t"
done

declare -a SUMMARY=()
FOUND=0
for t in "${TARGETS[@]}"; do
  seeds=$REPO/fixtures/fuzz/$t
  mkdir -p "corpus/$t" "artifacts/$t" "$seeds"
  stamp=$(mktemp)
  log=$(mktemp)
  dict=()
  [[ -f dict/$t.dict ]] && dict=("-dict=dict/$t.dict")
  echo "==> fuzzing $t for ${SECS}s" >&2
  set +e
  cargo +nightly fuzz run "$t" "corpus/$t" "$seeds" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" 2>&1 | tee "$log" | grep -E '^(#[0-9]+ +(INITED|DONE|NEW)|==[0-9]+==|SUMMARY|thread .* panicked)' | tail -n 5 >&2
  rc=${PIPESTATUS[0]}
  set -e
  runs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -n1)
  speed=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log" | tail -n1)
  kept=0
  while IFS= read -r -d '' f; do
    cp "$f" "$seeds/"
    echo "    kept $(basename "$f") in fixtures/fuzz/$t/" >&2
    kept=$((kept + 1))
  done < <(find "artifacts/$t" -type f -newer "$stamp" -print0)
  rm -f "$stamp"
  status=ok
  if ((rc != 0 || kept > 0)); then
    status="FOUND $kept input(s) (exit $rc; log $log)"
    FOUND=1
  else
    rm -f "$log"
  fi
  SUMMARY+=("$(printf '%-16s %12s runs %8s exec/s  %s' "$t" "${runs:-?}" "${speed:-?}" "$status")")
done

echo
printf '%s\n' "${SUMMARY[@]}"
exit "$FOUND"
