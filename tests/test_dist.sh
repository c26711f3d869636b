#!/usr/bin/env bash
# Data-parallel training on CPU ranks (mpirun, host/dist), on real digits (the
# MNIST test set: 8000 train / 2000 test, or a smaller part), small MLPs, one
# GEMM thread per rank. Skipped (77) without mpirun, without MPI compiled in,
# or without the data.
#
# 1. 2 ranks with the global batch 128 (64 rows each) vs 1 rank with 128,
#    50 updates, Adam, dropout 0.2, BatchNorm with --sync-bn: the parameters
#    of the two checkpoints agree to 1e-5 relative (read by an independent
#    parser of the checkpoint format, below), the running statistics too, and
#    the two ranks' parameters are bit-identical (DESCENT_DIST_DUMP). The
#    biases of the linear layers that feed a BatchNorm (and the running means,
#    which follow them) are left out of the 1e-5 comparison: their exact
#    gradient is 0 (BatchNorm subtracts the mean), so what they receive is
#    rounding noise that Adam scales to +-lr steps; they do not change the
#    function (checked: the test losses agree, and under SGD they agree too:
#    case 2).
# 2. The same without BatchNorm (Adam, dropout), and with BatchNorm under SGD:
#    every parameter agrees to 1e-5.
# 3. Evaluation is sharded and reduced: the initial model's test loss on
#    2 ranks equals 1 rank's.
# 4. Resume across rank counts: 1 epoch on 2 ranks, then the second on 1 rank
#    equals 2 epochs on 1 rank (to 1e-5).
# 5. An injected fault on rank 1 (DESCENT_FAULT_AT_UPDATE) ends the job within
#    10 s with exit 1 and one line naming rank 1; the checkpoint of the last
#    epoch is intact (descent eval reads it).
# 6. Refused: a global batch not divisible by the ranks (exit 2 naming both
#    numbers), ranks given different flags (exit 2), parameters that differ
#    between ranks at a log point (DESCENT_DIST_DIVERGE_RANK: exit 1 naming the
#    rank), a launcher of another MPI (exit 2), --sync-bn without --batchnorm.
# In a build without MPI, only the refusal of a launcher is checked (exit 2).
set -u -o pipefail
: "${DESCENT:?DESCENT must point at the descent binary}"
# A build without MPI refuses to be one of several processes (a launcher's variables say so).
if ! "$DESCENT" --version | grep -q '^mpi: MPI'; then
  err=$(OMPI_COMM_WORLD_SIZE=2 "$DESCENT" train --steps 1 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -eq 2 ] && printf '%s\n' "$err" | grep -q '^descent: train: .*one of 2 processes.*built without MPI'; then
    echo "test_dist: this descent has no MPI: it refuses mpirun (checked); nothing else to test"
    exit 0
  fi
  echo "FAIL: a build without MPI under OMPI_COMM_WORLD_SIZE=2: exit $rc, want 2 with one line: $err" >&2
  exit 1
fi
command -v mpirun >/dev/null || { echo "test_dist: mpirun is not installed (make deps): skipped"; exit 77; }
command -v python3 >/dev/null || { echo "test_dist: python3 is not installed: skipped"; exit 77; }
. "$(dirname "$0")/mnist_suite.sh" test_dist

# Open MPI refuses to run as root without these; ranks may outnumber cores here
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
# ranks that wait yield the core (this machine may run more ranks than it has cores);
# shared memory only (no network transports probed: faster start)
MPIRUN=(mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 --mca btl self,vader --mca pml ob1)
# In a sanitizer build (make test-asan), Open MPI's own allocations that it
# never frees (its components, hwloc topology) would fail every rank with
# LeakSanitizer's exit code; the ranks run with leak detection off, address
# and UB checks on. The one-process runs here keep it (they touch no MPI).
if [ -n "${ASAN_OPTIONS:-}" ]; then
  MPIRUN=(env "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0" "${MPIRUN[@]}")
fi
DATA=(--backend cpu --train-images "$IMAGES" --train-labels "$LABELS")
field() { printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }

# compare.py A B [params:LO-HI | stats:LO-HI ...]: the parameters (and running statistics) of two
# checkpoints, parsed here from the documented layout (descent/checkpoint.h):
# "DSCKPT01" | u32 version | u32 header_bytes | header | u32 crc | tensors of
# u32 role | u64 count | u32 crc | f32[count]. Prints the relative error
# max|a-b| / max|b| of each role, over the indices not left out; exits 1 when
# one exceeds 1e-5.
cat >"$W/compare.py" <<'EOF'
import struct, sys
def tensors(path):
    b = open(path, 'rb').read()
    assert b[:8] == b'DSCKPT01', path
    hb = struct.unpack_from('<I', b, 12)[0]
    off, out = 16 + hb + 4, {}
    while off < len(b):
        role, count, _ = struct.unpack_from('<IQI', b, off)
        off += 16
        out[role] = struct.unpack_from('<%df' % count, b, off)
        off += 4 * count
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
skip = {0: set(), 1: set()}   # arguments "params:LO-HI" or "stats:LO-HI" leave ranges out
for arg in sys.argv[3:]:
    role, span = arg.split(':')
    lo, hi = map(int, span.split('-'))
    skip[0 if role == 'params' else 1] |= set(range(lo, hi))
bad = 0
for role, name in ((0, 'params'), (1, 'stats')):
    if role not in b:
        continue
    x, y = a[role], b[role]
    assert len(x) == len(y)
    idx = [i for i in range(len(y)) if i not in skip[role]]
    err = max(abs(x[i] - y[i]) for i in idx) / max(max(abs(y[i]) for i in idx), 1e-30)
    print('%s: %d compared, relative error %.3g' % (name, len(idx), err))
    bad |= err > 1e-5
sys.exit(1 if bad else 0)
EOF

# ---- 1. 2 ranks x 64 vs 1 rank x 128: Adam, dropout, BatchNorm, --sync-bn
echo "test_dist: $(date +%T) 1. 2 ranks x "
LOCALBN=(train "${DATA[@]}" --test-fraction 0.2 --hidden 32,16 --batchnorm --dropout 0.2 --optimizer adam
         --lr 1e-3 --batch-size 128 --steps 50 --log-every 25 --seed 3 --quiet --json)
BN=("${LOCALBN[@]}" --sync-bn)
# 784-32-16-10: weights 25088 + 512 + 160 = 25760, then the biases of fc1 (32) and fc2 (16), which feed
# BatchNorms; the running means follow those biases (statistics: mean1 [0,32) var1 [32,64) mean2 [64,80) var2)
PREBN=(params:25760-25808 stats:0-32 stats:64-80)
t0=$(date +%s)
two=$(DESCENT_DIST_DUMP="$W/bn2" "${MPIRUN[@]}" -np 2 "$DESCENT" "${BN[@]}" --save "$W/bn2.ckpt" 2>"$W/err") ||
  fail "2 ranks, --sync-bn: exit $? ($(tail -n 3 "$W/err"))"
one=$("$DESCENT" "${BN[@]}" --save "$W/bn1.ckpt" 2>"$W/err") || fail "1 rank, batchnorm: exit $? ($(cat "$W/err"))"
python3 "$W/compare.py" "$W/bn2.ckpt" "$W/bn1.ckpt" "${PREBN[@]}" || fail "2 ranks x 64 vs 1 rank x 128 (--sync-bn): parameters differ beyond 1e-5"
cmp -s "$W/bn2.rank0" "$W/bn2.rank1" || fail "--sync-bn: the two ranks' parameters are not bit-identical"
[ -s "$W/bn2.rank0" ] || fail "DESCENT_DIST_DUMP wrote nothing"
python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-4 * abs(b))' \
  "$(field test_loss "$two")" "$(field test_loss "$one")" ||
  fail "--sync-bn: test_loss $(field test_loss "$two") on 2 ranks, $(field test_loss "$one") on 1"
[ "$(field steps "$two")" = 50 ] && [ "$(field batch_size "$two")" = 128 ] || fail "2 ranks' JSON: $two"
[ "$(printf '%s\n' "$two" | grep -c '^{')" = 1 ] || fail "2 ranks printed $(printf '%s\n' "$two" | grep -c '^{') JSON objects, want 1 (rank 0's)"
# the check can fail: without --sync-bn each rank normalises its own 64 rows
"${MPIRUN[@]}" -np 2 "$DESCENT" "${LOCALBN[@]}" --save "$W/bnl.ckpt" >/dev/null 2>"$W/err" || fail "2 ranks, local BN: exit $?"
python3 "$W/compare.py" "$W/bnl.ckpt" "$W/bn1.ckpt" "${PREBN[@]}" >/dev/null &&
  fail "BatchNorm over each rank's slice agrees with the whole batch's to 1e-5: the comparison cannot fail"

# ---- 2. without BatchNorm (Adam, dropout); with BatchNorm under SGD
echo "test_dist: $(date +%T) 2. without Ba"
PLAIN=(train "${DATA[@]}" --test-fraction 0.2 --hidden 32,16 --dropout 0.2 --optimizer adam --lr 1e-3
       --batch-size 128 --steps 50 --log-every 25 --seed 3 --quiet)
DESCENT_DIST_DUMP="$W/p2" "${MPIRUN[@]}" -np 2 "$DESCENT" "${PLAIN[@]}" --save "$W/p2.ckpt" >/dev/null 2>"$W/err" ||
  fail "2 ranks, no BatchNorm: exit $?"
"$DESCENT" "${PLAIN[@]}" --save "$W/p1.ckpt" >/dev/null || fail "1 rank, no BatchNorm: exit $?"
python3 "$W/compare.py" "$W/p2.ckpt" "$W/p1.ckpt" || fail "no BatchNorm: 2 ranks x 64 vs 1 rank x 128 differ beyond 1e-5"
cmp -s "$W/p2.rank0" "$W/p2.rank1" || fail "no BatchNorm: the two ranks' parameters are not bit-identical"
SGD=(train "${DATA[@]}" --test-fraction 0.2 --hidden 32,16 --batchnorm --sync-bn --dropout 0.2 --lr 0.1
     --batch-size 128 --steps 20 --seed 3 --quiet)
"${MPIRUN[@]}" -np 2 "$DESCENT" "${SGD[@]}" --save "$W/s2.ckpt" >/dev/null 2>"$W/err" || fail "2 ranks, SGD: exit $?"
"$DESCENT" "${SGD[@]}" --save "$W/s1.ckpt" >/dev/null || fail "1 rank, SGD: exit $?"
python3 "$W/compare.py" "$W/s2.ckpt" "$W/s1.ckpt" || fail "SGD, --sync-bn: every parameter (pre-BatchNorm biases too) should agree to 1e-5"

# ---- 3. sharded evaluation: the initial model on 2 ranks and on 1
echo "test_dist: $(date +%T) 3. sharded ev"
E=(train "${DATA[@]}" --test-fraction 0.2 --hidden 32,16 --epochs 0 --quiet --json)
e2=$("${MPIRUN[@]}" -np 2 "$DESCENT" "${E[@]}" 2>"$W/err") || fail "2 ranks, --epochs 0: exit $?"
e1=$("$DESCENT" "${E[@]}") || fail "1 rank, --epochs 0: exit $?"
for f in test_loss test_accuracy; do
  python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-7 * abs(b))' \
    "$(field $f "$e2")" "$(field $f "$e1")" || fail "sharded evaluation: $f $(field $f "$e2") on 2 ranks, $(field $f "$e1") on 1"
done

# ---- 4. resume across rank counts (2000 training rows: 16 updates an epoch)
echo "test_dist: $(date +%T) 4. resume acr"
R=(train "${DATA[@]}" --test-fraction 0.8 --hidden 32,16 --batchnorm --sync-bn --dropout 0.2 --optimizer adam
   --lr 1e-3 --batch-size 128 --seed 3 --quiet)
"${MPIRUN[@]}" -np 2 "$DESCENT" "${R[@]}" --epochs 1 --save "$W/r1.ckpt" >/dev/null 2>"$W/err" || fail "resume: 1 epoch on 2 ranks: exit $?"
"$DESCENT" "${R[@]}" --epochs 2 --resume "$W/r1.ckpt" --save "$W/r2.ckpt" >/dev/null 2>"$W/err" ||
  fail "resume: the second epoch on 1 rank: exit $? ($(cat "$W/err"))"
"$DESCENT" "${R[@]}" --epochs 2 --save "$W/r0.ckpt" >/dev/null || fail "resume: 2 epochs on 1 rank: exit $?"
python3 "$W/compare.py" "$W/r2.ckpt" "$W/r0.ckpt" "${PREBN[@]}" || fail "1 epoch on 2 ranks + 1 on 1 rank differs from 2 epochs on 1 rank"

# ---- 5. a fault on rank 1 (update 100: in the second epoch of 63 updates)
echo "test_dist: $(date +%T) 5. a fault on"
F=(train "${DATA[@]}" --test-fraction 0.2 --hidden 32,16 --batch-size 128 --epochs 5 --save "$W/f.ckpt" --save-every 1
   --seed 3 --quiet)
start=$(date +%s)
"${MPIRUN[@]}" -np 1 "$DESCENT" "${F[@]}" : -np 1 env DESCENT_FAULT_AT_UPDATE=100 "$DESCENT" "${F[@]}" >"$W/out" 2>"$W/err"
rc=$?
took=$(($(date +%s) - start))
[ "$rc" -eq 1 ] || fail "fault on rank 1: mpirun exit $rc, want 1"
[ "$took" -le 10 ] || fail "fault on rank 1: the job took $took s to end (want <= 10)"
[ "$(grep -c '^descent: ' "$W/err")" = 1 ] || fail "fault on rank 1: want one descent line: $(grep '^descent: ' "$W/err")"
grep -q '^descent: rank 1: .*injected fault' "$W/err" || fail "fault on rank 1: no line naming rank 1: $(cat "$W/err")"
[ -s "$W/out" ] && fail "fault on rank 1: results printed: $(cat "$W/out")"
"$DESCENT" eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 \
  --checkpoint "$W/f.ckpt" >/dev/null 2>"$W/err" || fail "fault on rank 1: the last checkpoint does not load: $(cat "$W/err")"

# ---- 6. refusals
echo "test_dist: $(date +%T) 6. refusals"
U=(train "${DATA[@]}" --test-fraction 0.2 --hidden 8 --steps 2 --quiet)
"${MPIRUN[@]}" -np 2 "$DESCENT" "${U[@]}" --batch-size 127 >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 2 ] || fail "batch 127 on 2 ranks: exit $rc, want 2"
grep -q '^descent: .*--batch-size 127.* 2 processes' "$W/err" || fail "batch 127 on 2 ranks: message: $(cat "$W/err")"
[ "$(grep -c '^descent: ' "$W/err")" = 1 ] || fail "batch 127 on 2 ranks: want one line: $(grep '^descent: ' "$W/err")"
"${MPIRUN[@]}" -np 1 "$DESCENT" "${U[@]}" --lr 0.1 : -np 1 "$DESCENT" "${U[@]}" --lr 0.2 >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 2 ] || fail "different flags on the ranks: exit $rc, want 2"
grep -q '^descent: .*different flags: rank 1 differs from rank 0' "$W/err" || fail "different flags: message: $(cat "$W/err")"
DESCENT_DIST_DIVERGE_RANK=1 "${MPIRUN[@]}" -np 2 "$DESCENT" "${U[@]}" --log-every 1 >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 1 ] || fail "diverged parameters: exit $rc, want 1"
grep -q '^descent: the parameters differ between processes after update 1: rank 1 differs' "$W/err" ||
  fail "diverged parameters: message: $(cat "$W/err")"
env -u OMPI_COMM_WORLD_SIZE PMI_SIZE=2 "$DESCENT" "${U[@]}" >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 2 ] || fail "PMI_SIZE=2 (another launcher): exit $rc, want 2"
grep -q '^descent: train: started by .*PMI_SIZE=2' "$W/err" || fail "PMI_SIZE=2: message: $(cat "$W/err")"
"$DESCENT" "${U[@]}" --sync-bn >"$W/out" 2>"$W/err"
[ $? -eq 2 ] && grep -q -- '--sync-bn: needs --batchnorm' "$W/err" || fail "--sync-bn without --batchnorm: $(cat "$W/err")"

# ---- mpirun -np 2 descent sweep: the ranks share the trials, rank 0 writes one file,
#      and the file equals one process's sweep (up to the timings)
SW=(sweep --optimizer sgd,adam --lr 0.01,0.1 --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2
    --hidden 16 --steps 30 --threads 1)
"${MPIRUN[@]}" -np 2 "$DESCENT" "${SW[@]}" --out "$W/sw2.jsonl" >/dev/null 2>"$W/err" || fail "sweep on 2 ranks: exit $?: $(tail -n 2 "$W/err")"
grep -q "2 ranks share the 4 trials" "$W/err" || fail "sweep on 2 ranks did not say the ranks share the trials"
"$DESCENT" "${SW[@]}" --out "$W/sw1.jsonl" >/dev/null 2>"$W/err" || fail "sweep on 1 process: exit $?"
python3 - "$W/sw2.jsonl" "$W/sw1.jsonl" <<'PYEOF2' || fail "the 2-rank sweep's file differs from one process's"
import json, sys
def strip(r):
    r = dict(r)
    r["final"] = {k: v for k, v in r["final"].items() if "second" not in k and k != "time_to_target"}
    r["curve"] = [{k: v for k, v in p.items() if "second" not in k} for p in r["curve"]]
    return r
a = [strip(json.loads(l)) for l in open(sys.argv[1])]
b = {r["trial"]: r for r in (strip(json.loads(l)) for l in open(sys.argv[2]))}
ok = len(a) == 4 and len(b) == 4 and all(r["status"] == "ok" and b[r["trial"]] == r for r in a)
if not ok: print("FAIL:", len(a), len(b))
sys.exit(0 if ok else 1)
PYEOF2

echo "test_dist: $failures failure(s) ($(($(date +%s) - t0)) s)"
[ "$failures" -eq 0 ]
