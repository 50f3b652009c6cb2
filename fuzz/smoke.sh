#!/usr/bin/env bash
# CI smoke run of the fuzz targets.
#
# Usage: fuzz/smoke.sh [TARGET...]        (default: every target in fuzz/)
#   FUZZ_SECONDS  seconds per target (default 60)
#
# Installs cargo-fuzz if it is missing, builds every target with
# `cargo +nightly fuzz build`, seeds each corpus from fuzz/seeds/<target>/,
# runs each target for FUZZ_SECONDS under the same limits as the local runs
# (512 MB RSS, 256 MB per allocation, 10 s per input, so a hang is a
# failure), and exits non-zero if any target crashed, hung, ran out of
# memory or left a new artifact. Runs every target even after a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${FUZZ_SECONDS:-60}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "smoke: a nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true
    fi
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "smoke: $t for ${seconds}s"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=256 \
        -timeout=10 -print_final_stats=1; then
        failed+=("$t")
        continue
    fi
    after=$(find "artifacts/$t" -type f | wc -l)
    if [ "$after" -gt "$before" ]; then
        echo "smoke: $t left new artifacts in fuzz/artifacts/$t" >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke: FAILED: ${failed[*]} (see fuzz/artifacts/; replay with" \
        "cargo +nightly fuzz run <target> <artifact>)" >&2
    exit 1
fi
echo "smoke: all ${#targets[@]} target(s) ran ${seconds}s without findings"
