#!/usr/bin/env bash
# gradverify's gradient check vs PyTorch's torch.autograd.gradcheck, same
# machine, same run, interleaved.
#
#   bash benches/gradcheck_peers.sh [ROUNDS] [REPS]    # default 3 rounds x 3 reps
#
# - installs torch if missing (pip install torch: the PyPI wheel, ~5 GB with
#   its CUDA libraries, runs on the CPU here);
# - copies the read-only peer folder (PEERS_DIR, default ../shared/bench/peers)
#   and runs its gradcheck_bench.py: float64 Linear(784, 100), batch 3, w.r.t.
#   the input only and input + W + b, slow and fast_mode=True;
# - builds examples/gradcheck_bench.rs in release: the same two workloads and
#   the tutorial's MLP 784-100-64-32-10, full and fast mode;
# - runs the two ROUNDS times, order alternating, each doing REPS checks per
#   case, and prints min / median per case and the ratio torch / gradverify.
# Threads: 2 everywhere. The load average is printed before and after.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-3}
REPS=${2:-3}
# shellcheck source=benches/peer_setup.sh
. "$ROOT/benches/peer_setup.sh"
# The PyPI wheel, about 5 GB with its CUDA libraries; it runs on the CPU here.
peer_setup torch torch

(cd "$ROOT" && cargo build --release --example gradcheck_bench >&2)
BIN="$ROOT/target/release/examples/gradcheck_bench"

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 RAYON_NUM_THREADS=2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
cd "$WORK/peers"
for ((r = 1; r <= ROUNDS; r++)); do
  order=(gradverify torch)
  ((r % 2 == 0)) && order=(torch gradverify)
  for nm in "${order[@]}"; do
    echo "[round $r/$ROUNDS] $nm (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if [ "$nm" = gradverify ]; then
      "$BIN" "$REPS" > "$WORK/${nm}_$r.json"
    else
      "$PY" gradcheck_bench.py "$REPS" > "$WORK/${nm}_$r.json"
    fi
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" - "$WORK" "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF'
import glob, json, statistics, sys
work, before, after = sys.argv[1:]
times = {}
for f in sorted(glob.glob(f"{work}/*_*.json")):
    peer = f.rsplit("/", 1)[1].split("_")[0]
    with open(f) as fh:
        for case, r in json.load(fh)["results"].items():
            if not r["passed"]:
                sys.exit(f"{peer} {case}: the check did not pass")
            times.setdefault((peer, case), []).extend(r["times_s"])
def fmt(s):
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s"
print(f"load average before: {before}, after: {after}")
print(f"{'case':<30} {'gradverify min / median':>26} {'torch min / median':>24} {'torch / ours (min, median)':>28}")
cases = sorted({c for (_, c) in times}, key=lambda c: (c.endswith("_fast"), c))
for case in cases:
    ours, theirs = times.get(("gradverify", case)), times.get(("torch", case))
    o = f"{fmt(min(ours))} / {fmt(statistics.median(ours))}" if ours else "-"
    t = f"{fmt(min(theirs))} / {fmt(statistics.median(theirs))}" if theirs else "-"
    ratio = (f"{min(theirs) / min(ours):.1f}x, {statistics.median(theirs) / statistics.median(ours):.1f}x"
             if ours and theirs else "-")
    print(f"{case:<30} {o:>26} {t:>24} {ratio:>28}")
# The whole MLP (9 tensors) against PyTorch's one Linear (3 tensors).
for mode in ("", "_fast"):
    ours, theirs = times.get(("gradverify", f"mlp_784_100_64_32_10{mode}")), times.get(("torch", f"input+W+b{mode}"))
    if ours and theirs:
        print(f"torch Linear(784,100){mode or ' full'} / gradverify MLP{mode or ' full'}: "
              f"{min(theirs) / min(ours):.2f}x by min, {statistics.median(theirs) / statistics.median(ours):.2f}x by median")
EOF
