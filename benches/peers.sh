#!/usr/bin/env bash
# gradverify vs the numpy and JAX peers, interleaved, same machine, same run.
#
#   bash benches/peers.sh [REPS] [EPOCHS]        # default 5 reps x 3 epochs
#
# - installs the peers' Python packages if missing (pip install numpy jax optax);
# - copies the read-only peer folder (PEERS_DIR, default ../shared/bench/peers
#   next to the repository) to a temporary directory;
# - builds examples/epoch_bench.rs in release (the peers' run, bit-identical
#   SplitMix64 He init and Fisher-Yates batch order, same JSON fields);
# - runs gradverify, numpy, numpy --no-input-grad, JAX and, if torch is
#   installed (benches/gradcheck_peers.sh installs it), PyTorch as fresh processes,
#   REPS times with the order rotated each time, each under /usr/bin/time -v;
# - prints min / median epoch and eval times, test accuracy, peak RSS, and the
#   ratios: numpy / ours, JAX / ours, PyTorch / ours, and ours / the GEMM-bound
#   floor: the epoch's 31.38 GFLOP at the 2-thread 2000^3 SGEMM rate that the
#   peers' gemm_bench.py measures in the same rotation (and, for comparison,
#   at the 171.5 GFLOP/s of results-2026-12-01.md, 0.183 s).
# Data: Fashion-MNIST in FMNIST_DIR (default /usr/share/datasets/fashion-mnist).
# Threads: 2 everywhere (OMP/OpenBLAS/MKL/RAYON_NUM_THREADS=2).
# PEERS_KEEP=DIR keeps the raw per-run output (JSON with every epoch time).
# The load average is printed before and after: other jobs on the machine make
# the numbers (especially 2-thread BLAS) meaningless, so run it when it is quiet.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${1:-5}
EPOCHS=${2:-3}
export FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
# shellcheck source=benches/peer_setup.sh
. "$ROOT/benches/peer_setup.sh"
peer_setup "numpy, jax, optax, threadpoolctl" "numpy jax optax threadpoolctl"

(cd "$ROOT" && cargo build --release --example epoch_bench >&2)
BIN="$ROOT/target/release/examples/epoch_bench"

export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 RAYON_NUM_THREADS=2
RAW="$WORK/raw"
mkdir -p "$RAW"
names=(gradverify numpy numpy-noinputgrad jax)
cmds=(
  "$BIN --epochs $EPOCHS"
  "$PY numpy_mlp.py --epochs $EPOCHS"
  "$PY numpy_mlp.py --epochs $EPOCHS --no-input-grad --label numpy-noinputgrad"
  "$PY jax_mlp.py --epochs $EPOCHS"
)
# The machine's SGEMM rate, measured in the rotation like a peer.
names+=(gemm)
cmds+=("$PY gemm_bench.py")
if "$PY" -c 'import torch' 2>/dev/null; then
  names+=(torch)
  cmds+=("$PY torch_mlp.py --epochs $EPOCHS --threads 2")
else
  echo "torch not installed: PyTorch is left out (pip install torch to add it)" >&2
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
n=${#names[@]}
cd "$WORK/peers"
for ((r = 1; r <= REPS; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(( (k + r - 1) % n ))
    nm=${names[$i]}
    echo "[rep $r/$REPS] $nm (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    /usr/bin/time -v -o "$RAW/${nm}_$r.time" ${cmds[$i]} \
      > "$RAW/${nm}_$r.json" 2> "$RAW/${nm}_$r.err" \
      || echo "  FAILED: $nm rep $r: $(tail -3 "$RAW/${nm}_$r.err")" >&2
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# PEERS_KEEP=DIR keeps every run's JSON, stderr and /usr/bin/time output.
if [ -n "${PEERS_KEEP:-}" ]; then mkdir -p "$PEERS_KEEP" && cp "$RAW"/* "$PEERS_KEEP"/; fi

"$PY" - "$RAW" "$REPS" "$EPOCHS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF'
import json, os, re, statistics, sys
raw, reps, epochs, before, after = sys.argv[1:]
FLOOR = 0.183  # s: 31.38 GFLOP at 171.5 GFLOP/s (results-2026-12-01.md)
rows = {}
floors = []
for f in sorted(os.listdir(raw)):
    m = re.match(r"(.+)_(\d+)\.json$", f)
    if not m:
        continue
    name = m.group(1)
    if name == "gemm":
        try:
            j = json.loads(open(os.path.join(raw, f)).read().strip().splitlines()[-1])
            floors.append(j["epoch"]["lower_bound_s_at_2000cube_peak_3x"])
        except (IndexError, ValueError, KeyError):
            pass
        continue
    r = rows.setdefault(name, {"epoch": [], "eval": [], "acc": set(), "rss": []})
    try:
        j = json.loads(open(os.path.join(raw, f)).read().strip().splitlines()[-1])
    except (IndexError, ValueError):
        continue
    r["epoch"] += j["epoch_s"]
    r["eval"] += j["eval_s"]
    r["acc"].add(round(j["test_acc"][-1], 4))
    t = open(os.path.join(raw, f[:-5] + ".time")).read()
    kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    if kb:
        r["rss"].append(int(kb.group(1)) / 1024)
def mm(v):
    return (min(v), statistics.median(v)) if v else (float("nan"),) * 2
print(f"{reps} interleaved reps x {epochs} epochs, 2 threads; load average before {before}, after {after}")
print()
print("| peer | epoch min / median s | eval 10k min / median ms | test acc (last epoch) | peak RSS MiB |")
print("|---|---|---|---|---|")
for name in ["gradverify", "numpy", "numpy-noinputgrad", "jax", "torch"]:
    if name not in rows:
        continue
    r = rows[name]
    e, v = mm(r["epoch"]), mm(r["eval"])
    acc = ", ".join(f"{a:.4f}" for a in sorted(r["acc"]))
    rss = f"{min(r['rss']):.0f}-{max(r['rss']):.0f}" if r["rss"] else "?"
    print(f"| {name} | {e[0]:.3f} / {e[1]:.3f} | {v[0]*1e3:.1f} / {v[1]*1e3:.1f} | {acc} | {rss} |")
print()
if "gradverify" in rows:
    ours = mm(rows["gradverify"]["epoch"])
    ours_eval = mm(rows["gradverify"]["eval"])
    print("| ratio | by min | by median |")
    print("|---|---|---|")
    for name, label in [("numpy", "numpy / gradverify (epoch)"),
                        ("numpy-noinputgrad", "numpy no-input-grad / gradverify (epoch)"),
                        ("jax", "JAX / gradverify (epoch)"),
                        ("torch", "PyTorch / gradverify (epoch)")]:
        if name in rows and rows[name]["epoch"]:
            o = mm(rows[name]["epoch"])
            print(f"| {label} | {o[0]/ours[0]:.2f}x | {o[1]/ours[1]:.2f}x |")
    for name, label in [("jax", "JAX"), ("torch", "PyTorch")]:
        if name in rows and rows[name]["eval"]:
            o = mm(rows[name]["eval"])
            print(f"| {label} / gradverify (eval 10k) | {o[0]/ours_eval[0]:.2f}x | {o[1]/ours_eval[1]:.2f}x |")
    if floors:
        f = mm(floors)
        print(f"| gradverify / GEMM floor measured in this run ({f[0]:.3f} s min, {f[1]:.3f} s median) | {ours[0]/f[0]:.2f}x | {ours[1]/f[1]:.2f}x |")
    print(f"| gradverify / GEMM floor {FLOOR} s of results-2026-12-01.md | {ours[0]/FLOOR:.2f}x | {ours[1]/FLOOR:.2f}x |")
EOF
