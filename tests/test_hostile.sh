#!/usr/bin/env bash
# Hostile input, table-driven: damaged IDX files, damaged checkpoints, bad
# flag values for every numeric flag of every command, and I/O failures.
# Each row runs the real binary and expects an exit status and a fragment of
# the one-line message (plus, for files, the file's name in that line).
#
# What test_cli.sh, test_idx.c and test_resume.sh already check is not
# repeated here (bad magic, truncation, count mismatch, flipped checkpoint
# bytes, a missing save folder, ...); this suite adds the gzip framing
# (trailing garbage, concatenated members, a stream longer or shorter than its
# header), headers past the size limits, non-files, checkpoints that pass
# their checksums but hold absurd sizes or settings, a sweep of every
# numeric flag that the commands list in --help, and writes that fail on a
# read-only folder or a full disk (/dev/full).
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds-test-hostile-XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
checks=0
fail() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# run ARGS...: leaves rc, $tmp/out, $tmp/err
run() {
  "$D" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  errfile=$tmp/err
}
# The message lines: not notes, and not ASan's warning when malloc returns
# NULL for an absurd size (make test-asan sets allocator_may_return_null=1).
err_lines() { grep -v -e '^descent: note: ' -e '^==[0-9]*==WARNING: AddressSanitizer failed to allocate' "$errfile"; }

# check CODE FRAGMENT [NAME]: the last run exited CODE with exactly one
# (non-note) stderr line holding FRAGMENT and, if given, NAME.
check() {
  local code=$1 frag=$2 name=${3:-} what=${WHAT:-descent}
  checks=$((checks + 1))
  if [ "$rc" != "$code" ]; then
    fail "$what: exit $rc, want $code; stderr: $(head -c 300 "$errfile")"
    return
  fi
  local n
  n=$(err_lines | wc -l)
  if [ "$n" != 1 ]; then
    fail "$what: $n stderr lines, want 1: $(head -c 400 "$errfile")"
  elif ! err_lines | grep -qF -- "$frag"; then
    fail "$what: message lacks '$frag': $(cat "$errfile")"
  elif [ -n "$name" ] && ! err_lines | grep -qF -- "$name"; then
    fail "$what: message does not name '$name': $(cat "$errfile")"
  fi
}

# queue CODE FRAGMENT NAME ARGS...: `expect`, run in the background (PAR at
# a time: a start of a CUDA-linked binary is mostly the loader mapping
# cuBLAS); drain checks the queued runs in order.
PAR=4
qn=0
mkdir -p "$tmp/q"
queue() {
  qn=$((qn + 1))
  local q=$tmp/q/$qn
  printf '%s\n' "$1" "$2" "$3" >"$q.spec"
  shift 3
  printf '%s ' descent "$@" >"$q.what"
  ("$D" "$@" >"$q.out" 2>"$q.err"; echo $? >"$q.rc") &
  while [ "$(jobs -rp | wc -l)" -ge $PAR ]; do wait -n; done
}
drain() {
  wait
  local i code frag name
  for ((i = 1; i <= qn; i++)); do
    { read -r code; read -r frag; read -r name; } <"$tmp/q/$i.spec"
    rc=$(cat "$tmp/q/$i.rc")
    errfile=$tmp/q/$i.err
    WHAT=$(cat "$tmp/q/$i.what") check "$code" "$frag" "$name"
    rm -f "$tmp/q/$i".*
  done
  qn=0
}

# expect CODE FRAGMENT NAME ARGS...
expect() {
  local code=$1 frag=$2 name=$3
  shift 3
  run "$@"
  WHAT="descent $*" check "$code" "$frag" "$name"
}

# ---- 1. IDX files -------------------------------------------------------------
# Synthetic data (100 images of 4x4, 3 classes), every variant written here.
python3 - "$tmp" <<'EOF' || { echo "test_hostile: cannot write the test files" >&2; exit 1; }
import gzip, os, struct, sys
t = sys.argv[1]
def w(name, b):
    open(os.path.join(t, name), 'wb').write(b)
def gz(b):
    return gzip.compress(b, mtime=0)
n = 100
payload = bytes((i * 7 + 3) & 255 for i in range(n * 16))
images = struct.pack('>IIII', 0x803, n, 4, 4) + payload
labels = struct.pack('>II', 0x801, n) + bytes(i % 3 for i in range(n))
w('im.gz', gz(images)); w('lb.gz', gz(labels)); w('im', images); w('lb', labels)
w('members.gz', gz(images[:10]) + gz(images[10:900]) + gz(images[900:]))   # valid: RFC 1952
w('trailing.gz', gz(images) + b'\x00' * 8)                                 # tape padding
w('trailing-junk.gz', gz(images) + b'hello')
w('member-junk.gz', gz(images) + gz(b'') + b'\x1f')                        # half a member header
w('long.gz', gz(images + payload[:16]))                                    # one image too many
w('long-stray.gz', gz(images + b'\x01\x02\x03'))
w('short.gz', gz(images[:-16]))                                            # one image short
w('long-raw', images + payload[:32])
g = bytearray(gz(images)); g[-8] ^= 0xff                                   # CRC32 of the member
w('crc.gz', bytes(g))
g = bytearray(gz(images)); g[-1] ^= 0x01                                   # ISIZE of the member
w('isize.gz', bytes(g))
w('cut.gz', gz(images)[:40])
w('gzheader.gz', gz(images)[:5])
w('double.gz', gz(gz(images)))
w('text.gz', gz(b'hello, world\n'))
w('float-type', struct.pack('>I', 0x0D03) + images[4:])
w('two-dims', struct.pack('>III', 0x802, n, 16) + payload)
w('zero-rows', struct.pack('>IIII', 0x803, n, 0, 4) + payload)
w('huge-side.gz', gz(struct.pack('>IIII', 0x803, 1, 4097, 1) + b'\0' * 4097))
w('huge-count.gz', gz(struct.pack('>IIII', 0x803, 100000000, 28, 28)))     # 78 GB announced
w('bomb-header.gz', gz(struct.pack('>IIII', 0x803, 1000, 28, 28)))        # 784 kB announced, none there
w('labels-as-images', labels)
w('images-as-labels', images)
w('lb-99.gz', gz(struct.pack('>II', 0x801, 99) + bytes(i % 3 for i in range(99))))
w('empty', b'')
os.mkdir(os.path.join(t, 'a-dir'))
EOF

DATA=(train --backend cpu --epochs 1 --test-fraction 0.2 --quiet)
I=$tmp/im.gz
L=$tmp/lb.gz
# images file | fragment (the file's name must be in the same line)
while IFS='|' read -r file frag; do
  [ -z "$file" ] && continue
  queue 2 "$frag" "$tmp/$file" "${DATA[@]}" --train-images "$tmp/$file" --train-labels "$L"
done <<'EOF'
trailing.gz|8 bytes of trailing garbage after the gzip data
trailing-junk.gz|trailing garbage
member-junk.gz|trailing garbage
long.gz|header says 100x4x4 but the data holds 101 images
long-stray.gz|holds 100 images and 3 stray bytes
short.gz|header says 100x4x4 but the data holds 99 images
long-raw|header says 100x4x4 but the data holds 102 images
crc.gz|incorrect data check
isize.gz|incorrect length check
cut.gz|gzip data is truncated
gzheader.gz|gzip data is truncated
double.gz|not an IDX file (it starts with 0x1f 0x8b
text.gz|not an IDX file
float-type|element type 0x0d, expected 0x08
two-dims|2 dimensions, expected 3
zero-rows|dimension 1 is 0
huge-side.gz|dimension 1 is 4097
huge-count.gz|more than the 2147483648-byte limit
bomb-header.gz|header says 1000x28x28 but the data holds 0 images
labels-as-images|1 dimensions, expected 3 (a labels file?)
empty|too short for an IDX header (0 bytes)
a-dir|is a directory
no-such-file.gz|cannot open: No such file or directory
EOF
drain
expect 2 "3 dimensions, expected 1 (an images file?)" "$tmp/images-as-labels" "${DATA[@]}" --train-images "$I" --train-labels "$tmp/images-as-labels"
expect 2 "holds 99 labels but" "$tmp/lb-99.gz" "${DATA[@]}" --train-images "$I" --train-labels "$tmp/lb-99.gz"
# the same checks through /dev/stdin (not a regular file: read to the end)
run "${DATA[@]}" --train-images /dev/stdin --train-labels "$L" <"$tmp/trailing.gz"
WHAT="images on stdin" check 2 "trailing garbage" /dev/stdin

# concatenated gzip members are one valid file, and give the same run as
# the single-member and the raw file (same bytes, same seed)
for f in members.gz im.gz im; do
  run train --backend cpu --train-images "$tmp/$f" --train-labels "$L" --test-fraction 0.2 --hidden 8 \
    --steps 3 --quiet --json
  checks=$((checks + 1))
  [ "$rc" = 0 ] || fail "$f: a valid file was refused: exit $rc: $(cat "$tmp/err")"
  sed -e 's/"[a-z_]*second[a-z_]*":[^,}]*//g' -e 's/"time_to_target":[^,}]*//' -e 's/"\(problem\|train_images\|train_labels\)":"[^"]*"//g' "$tmp/out" >"$tmp/$f.json"
done
checks=$((checks + 1))
cmp -s "$tmp/members.gz.json" "$tmp/im.gz.json" && cmp -s "$tmp/im.json" "$tmp/im.gz.json" ||
  fail "multi-member gzip, single gzip and raw inputs trained differently"

# ---- 2. checkpoints -----------------------------------------------------------
run train --backend cpu --train-images "$I" --train-labels "$L" --test-fraction 0.2 --hidden 5 \
  --optimizer adam --epochs 1 --quiet --save "$tmp/good.ckpt"
checks=$((checks + 1))
if [ "$rc" != 0 ] || [ ! -s "$tmp/good.ckpt" ]; then
  fail "cannot write the checkpoint the damage tests start from: exit $rc: $(cat "$tmp/err")"
else
  # Damaged copies whose checksums are recomputed, so that the checks behind
  # the checksums are what refuses them (layout: include/descent/checkpoint.h).
  python3 - "$tmp" <<'EOF' || fail "cannot write the damaged checkpoints"
import os, struct, sys, zlib
t = sys.argv[1]
b = bytearray(open(os.path.join(t, 'good.ckpt'), 'rb').read())
hlen = struct.unpack_from('<I', b, 12)[0]
def fix(c):
    c = bytearray(c)
    h = struct.unpack_from('<I', c, 12)[0]
    if 16 + h + 4 <= len(c):
        struct.pack_into('<I', c, 16 + h, zlib.crc32(bytes(c[:16 + h])))
    pos = 16 + h + 4
    while pos + 16 <= len(c):
        count = struct.unpack_from('<Q', c, pos + 4)[0]
        if pos + 16 + 4 * count > len(c):
            break
        struct.pack_into('<I', c, pos + 12, zlib.crc32(bytes(c[pos + 16:pos + 16 + 4 * count])))
        pos += 16 + 4 * count
    return bytes(c)
def w(name, c):
    open(os.path.join(t, name), 'wb').write(c)
# header: n_inputs, n_classes, n_hidden, hidden[1], activation, leaky, batchnorm,
# bn_momentum, bn_eps, dropout, input_dropout, dropout_form, init, kind, lr, ...
H = 16
c = bytearray(b); struct.pack_into('<f', c, H + 4 * 14, float('nan')); w('nan-lr.ckpt', fix(c))
c = bytearray(b); struct.pack_into('<f', c, H + 4 * 9, 1.5); w('dropout.ckpt', fix(c))
c = bytearray(b); struct.pack_into('<i', c, H + 4 * 3, 1 << 24); w('width.ckpt', fix(c))
c = bytearray(b); struct.pack_into('<i', c, H + 4 * 2, 200); w('layers.ckpt', fix(c))
c = bytearray(b); struct.pack_into('<I', c, 12, 0xFFFFFFF0); w('hlen.ckpt', bytes(c))
c = bytearray(b); struct.pack_into('<I', c, 8, 99); w('version.ckpt', fix(c))
# the first tensor claims 2^40 floats (4 TiB): refused before any allocation
c = bytearray(b); struct.pack_into('<Q', c, 16 + hlen + 4 + 4, 1 << 40); w('count.ckpt', fix(c))
w('trailing.ckpt', fix(b + b'\0' * 4))
c = bytearray(b); struct.pack_into('<f', c, len(c) - 4, float('inf')); w('inf-state.ckpt', fix(c))
w('empty.ckpt', b'')
EOF
  RES=(train --backend cpu --train-images "$I" --train-labels "$L" --test-fraction 0.2 --hidden 5 --optimizer adam --epochs 2 --quiet)
  while IFS='|' read -r file frag; do
    [ -z "$file" ] && continue
    queue 2 "$frag" "$tmp/$file" "${RES[@]}" --resume "$tmp/$file"
  done <<'EOF'
nan-lr.ckpt|a non-finite setting
dropout.ckpt|a model setting is out of range
width.ckpt|do not match its model
layers.ckpt|malformed header
hlen.ckpt|absurd header size
version.ckpt|version 99, this descent reads versions 1 to 3
count.ckpt|where the parameters
trailing.ckpt|trailing bytes after the last tensor
inf-state.ckpt|non-finite value in the optimizer v
empty.ckpt|truncated before the header
a-dir|not a regular file
EOF
  drain
  expect 2 "non-finite setting" "$tmp/nan-lr.ckpt" eval --backend cpu --train-images "$I" --train-labels "$L" \
    --test-fraction 0.2 --checkpoint "$tmp/nan-lr.ckpt"
fi

# ---- 3. flags -------------------------------------------------------------------
# Specific cases the --help sweep below cannot generate (parsing happens
# before any data is read, so none of these needs data).
while IFS='|' read -r flag frag args; do
  [ -z "$flag" ] && continue
  eval "set -- $args"
  queue 2 "$frag" "$flag" "$@"
done <<'EOF'
--lr|beyond the range of a float (32-bit), got '1e300'|train --lr 1e300
--lr|got '1e-50'|train --lr 1e-50
--lr|got '1e999'|train --lr 1e999
--momentum|got '3.5e38'|train --momentum 3.5e38
--weight-decay|got ''|train --weight-decay ''
--steps|got '1e3'|train --steps 1e3
--steps|got ''|playground --steps ''
--fn|expected one of|playground --fn ''
--accum|got '1e999'|train --accum 1e999
--dropout|got 'nan'|train --dropout nan
--momentum|got '-inf'|train --momentum -inf
--eval-batch|got 'nan'|train --eval-batch nan
--seed|got 'nan'|train --seed nan
--hidden|got 'nan'|train --hidden nan
--batch-size|got 'nan'|train --batch-size nan
--schedule|got 'nan'|train --schedule nan
--warmup|needs a value|train --warmup
--x0|needs a value|playground --x0
--seed|needs a value|train --seed
--dropout|got '0.99999999'|train --dropout 0.99999999
--epochs|got ' 5'|train --epochs ' 5'
--lr|got ' 0.1'|train --lr ' 0.1'
--epochs|got '0x10'|train --epochs 0x10
--epochs|got '9223372036854775808'|train --epochs 9223372036854775808
--seed|got '18446744073709551616'|train --seed 18446744073709551616
--seed|got '+5'|train --seed +5
--accum|got '2147483648'|train --accum 2147483648
--device|got '-1'|train --device -1
--eval-batch|got '0'|train --eval-batch 0
--batch-size|got '100000001'|train --batch-size 100000001
--batch-size|got 'Full'|train --batch-size Full
--hidden|got '1000001'|train --hidden 1000001
--hidden|at most|train --hidden 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
--t-max|got '0'|train --t-max 0
--step-size|got '0'|train --step-size 0
--gamma|got '0'|train --gamma 0
--alpha|got '1'|train --alpha 1
--dampening|got '1.5'|train --dampening 1.5
--bn-eps|got '0'|train --bn-eps 0
--leaky-slope|got '1'|train --leaky-slope 1
--test-fraction|got '0'|train --test-fraction 0
--x0|expected one number or two|playground --x0 1,2,3
--x0|must fit in a float|playground --x0 1e39
--x0|expected one number|playground --x0 nan
--steps|got '1000001'|playground --steps 1000001
--device|got 'x'|eval --device x
--json|takes no value|eval --json=1
--bogus|unknown flag|eval --bogus
--bogus|unknown flag|playground --bogus
extra|unexpected argument 'extra'|train extra
EOF
drain

# The sweep: every flag that `descent <cmd> --help` lists, for every command
# that `descent --help` lists, one run each (new flags and commands are
# picked up automatically). A switch must refuse a value ("--json=1"); a flag
# whose value is a number (or a choice) must refuse trailing junk ("1x"); a
# flag whose value is a name or a text (FILE, DIR, NAME, PATH, TEXT, a
# backend; a new string flag with another metavar belongs in that list) must
# refuse a missing value. Each time: exit 2 and the flag named. NaN, overflow,
# empty values and range ends go through the same code for every flag and
# are rows of the table above. A flag that a command shares with one already
# swept (same name and metavar: the optimizer and data flags) is swept once,
# since each start of a CUDA-linked descent costs ~0.1 s (loading cuBLAS).
declare -A swept
run --help
cmds=$(awk '/^commands:/{on=1; next} on && /^$/{on=0} on && /^  [a-z]/{print $1}' "$tmp/out")
checks=$((checks + 1))
echo "$cmds" | grep -qx train || fail "descent --help lists no train command: $(cat "$tmp/out")"
for cmd in $cmds; do
  run "$cmd" --help
  checks=$((checks + 1))
  [ "$rc" = 0 ] || { fail "descent $cmd --help: exit $rc"; continue; }
  # "  --flag METAVAR   help" (the left column is padded to 30 characters)
  python3 - "$tmp/out" >"$tmp/flags" <<'EOF'
import re, sys
for line in open(sys.argv[1]):
    m = re.match(r'^  (--[a-z0-9-]+)(?: (\S+))?(?:  |\n|$)', line)
    if m:
        print(m.group(1), m.group(2) or '-')
EOF
  nflags=$(wc -l <"$tmp/flags")
  checks=$((checks + 1))
  [ "$nflags" -ge 1 ] || fail "descent $cmd --help: only $nflags flags found: $(head -c 300 "$tmp/out")"
  while read -r flag meta; do
    [ -n "${swept[$flag $meta]:-}" ] && continue
    swept[$flag $meta]=1
    case "$meta" in
      -) queue 2 "$flag takes no value" "$flag" "$cmd" "$flag=1" ;;
      *FILE* | *DIR* | *NAME* | *PATH* | TEXT | *auto* | *cpu* | lecture)
        queue 2 "$flag needs a value" "$flag" "$cmd" "$flag" ;;
      # the sentinel: should "1x" be accepted, parsing still stops (and the
      # check fails) before anything runs
      *) queue 2 "got '1x'" "$flag" "$cmd" "$flag" 1x --sentinel-not-a-flag ;;
    esac
  done <"$tmp/flags"
  drain
done

# ---- 4. I/O failures --------------------------------------------------------------
# A read-only folder. root ignores permissions, so as root the writes run
# without CAP_DAC_OVERRIDE (setpriv), which makes root obey them too.
ro=$tmp/read-only
mkdir -p "$ro"
cp "$tmp/good.ckpt" "$ro/prev.ckpt" 2>/dev/null
chmod 555 "$ro"
AS=()
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null &&
    setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search true 2>/dev/null; then
    AS=(setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search)
  else
    AS=(skip)
  fi
fi
runas() {
  "${AS[@]}" "$D" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  errfile=$tmp/err
}
QUICK=(train --backend cpu --train-images "$I" --train-labels "$L" --test-fraction 0.2 --hidden 5 --optimizer adam --steps 2 --quiet)
if [ "${AS[0]:-}" = skip ]; then
  echo "note: running as root without setpriv: the read-only folder checks are skipped"
else
  runas "${QUICK[@]}" --save "$ro/new.ckpt"
  WHAT="--save into a read-only folder" check 1 "cannot write there" "$ro/new.ckpt"
  runas "${QUICK[@]}" --save "$ro/prev.ckpt"
  WHAT="--save over a checkpoint in a read-only folder" check 1 "cannot write there" "$ro/prev.ckpt"
  checks=$((checks + 1))
  cmp -s "$tmp/good.ckpt" "$ro/prev.ckpt" || fail "a failed save changed the previous checkpoint"
  runas playground --fn bowl --steps 3 --plot "$ro/p.svg"
  WHAT="--plot into a read-only folder" check 1 "" "$ro/p.svg"
  runas playground --preset lecture --out "$ro/pics"
  WHAT="--out in a read-only folder" check 1 "" "$ro/pics"
  if grep -q -- '--log ' <("$D" train --help); then
    runas "${QUICK[@]}" --log "$ro/log.csv"
    WHAT="--log into a read-only folder" check 1 "" "$ro/log.csv"
  fi
fi
# a save path below a regular file (ENOTDIR)
run "${QUICK[@]}" --save "$tmp/good.ckpt/x.ckpt"
WHAT="--save below a file" check 1 "cannot write there" "$tmp/good.ckpt/x.ckpt"
# a full disk: /dev/full takes opens and fails every write (ENOSPC)
if [ -w /dev/full ]; then
  "$D" "${QUICK[@]}" --json >/dev/full 2>"$tmp/err"
  rc=$?; errfile=$tmp/err
  WHAT="train --json > /dev/full" check 1 "standard output"
  "$D" train --help >/dev/full 2>"$tmp/err"
  rc=$?
  errfile=$tmp/err
  WHAT="train --help > /dev/full" check 1 "standard output"
  "$D" playground --fn bowl --steps 3 >/dev/full 2>"$tmp/err"
  rc=$?; errfile=$tmp/err
  WHAT="playground CSV > /dev/full" check 1 "standard output"
  "$D" eval --backend cpu --train-images "$I" --train-labels "$L" --test-fraction 0.2 \
    --checkpoint "$tmp/good.ckpt" --json >/dev/full 2>"$tmp/err"
  rc=$?; errfile=$tmp/err
  WHAT="eval --json > /dev/full" check 1 "standard output"
  # a picture is written to FILE.tmp, then renamed: that temporary on a full disk
  echo previous >"$tmp/full.svg"
  ln -s /dev/full "$tmp/full.svg.tmp"
  run playground --fn bowl --steps 3 --plot "$tmp/full.svg"
  WHAT="--plot onto a full disk" check 1 "No space" "$tmp/full.svg"
  checks=$((checks + 1))
  [ "$(cat "$tmp/full.svg")" = previous ] || fail "a failed --plot changed the file that was there"
  # a device as the output itself: refused before any work (exit 2)
  ln -s /dev/full "$tmp/full.csv"
  run "${QUICK[@]}" --log "$tmp/full.csv"
  WHAT="--log onto a device (through a link)" check 2 "not a regular file" "$tmp/full.csv"
  run "${QUICK[@]}" --save /dev/full
  WHAT="--save /dev/full" check 2 "not a regular file" /dev/full
  checks=$((checks + 1))
  [ -c /dev/full ] || fail "--save /dev/full replaced the device"
fi

# ---- 5. out of memory: absurd sizes fail with the sizes, exit 1 ----------------------
# 10^6 x 10^6 floats (4 TB) for the second layer cannot be allocated anywhere.
run train --backend cpu --train-images "$I" --train-labels "$L" --test-fraction 0.2 --hidden 1000000,1000000 --steps 1 --quiet
WHAT="--hidden 1000000,1000000" check 1 "GiB of host memory"
checks=$((checks + 1))
grep -Eq 'needs about [0-9.]+ GiB .* [0-9.]+ GiB is available' "$tmp/err" ||
  fail "--hidden 1000000,1000000: the message does not give both sizes: $(cat "$tmp/err")"
# the same on a GPU, where there is one (device memory instead of host memory)
if nvidia-smi -L 2>/dev/null | grep -q '^GPU' && ! "$D" --version | grep -q 'cuda: not compiled in'; then
  run train --backend cuda --train-images "$I" --train-labels "$L" --test-fraction 0.2 --hidden 1000000,1000000 --steps 1 --quiet
  WHAT="--backend cuda --hidden 1000000,1000000" check 1 "GiB of GPU memory"
  checks=$((checks + 1))
  grep -Eq 'needs about [0-9.]+ GiB .* [0-9.]+ GiB is available' "$tmp/err" ||
    fail "cuda OOM: the message does not give both sizes: $(cat "$tmp/err")"
fi

if [ "$fails" != 0 ]; then
  echo "test_hostile: $fails of $checks checks FAILED" >&2
  exit 1
fi
echo "test_hostile: all $checks checks passed"
