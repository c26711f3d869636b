#!/usr/bin/env bash
# `descent playground` from the outside: CSV layout, one block per optimizer,
# the lecture's sign pattern, divergence reported on stderr with exit 0, the
# same optimizer flags as `descent train`, usage errors, --plot and --preset,
# the picture written before the CSV (a reader that stops early, a full
# disk), --quiet; and `descent plot` of a log with a single row.
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# ---- CSV layout ----------------------------------------------------------------
"$D" playground --steps 5 --lr 0.2 >"$tmp/p.csv" 2>"$tmp/p.err"
check '[ $? -eq 0 ]' "parabola run exits 0"
check '[ "$(head -1 "$tmp/p.csv")" = "optimizer,step,x1,f,grad_norm,lr" ]' "1-D header: $(head -1 "$tmp/p.csv")"
check '[ "$(wc -l <"$tmp/p.csv")" -eq 7 ]' "1-D: header + N+1 rows"
# compared as numbers: float 8.7 is 8.69999981 to nine digits, 8.7 in the shortest form
check 'awk -F, '"'"'NR == 2 { d = $3 - 8.7; if (d < 0) d = -d; exit !($1 == "sgd" && $2 == 0 && d < 1e-6) }'"'"' "$tmp/p.csv"' \
  "row 0 is x0 (float 8.7): $(sed -n 2p "$tmp/p.csv")"

"$D" playground --fn bowl --optimizer sgd,momentum,adam --steps 4 >"$tmp/m.csv"
check '[ "$(head -1 "$tmp/m.csv")" = "optimizer,step,x1,x2,f,grad_norm,lr" ]' "2-D header"
# one contiguous block per optimizer, steps 0..4 in order, all from the same start
blocks=$(awk -F, 'NR>1 { if ($1 != prev) { printf "%s ", $1; prev = $1 } }' "$tmp/m.csv")
check '[ "$blocks" = "sgd momentum adam " ]' "blocks in order: '$blocks'"
check 'awk -F, '"'"'NR>1 { if ($2 != n[$1]++) exit 1 } END { for (k in n) if (n[k] != 5) exit 1 }'"'"' "$tmp/m.csv"' \
  "each block holds steps 0..4"
check '[ "$(awk -F, '"'"'$2 == 0 { print $3 "," $4 }'"'"' "$tmp/m.csv" | sort -u | wc -l)" -eq 1 ]' "same start for every optimizer"
# f column is x1^2 + x2^2 on every row (to float printing precision)
check 'awk -F, '"'"'NR>1 { d = $5 - ($3*$3 + $4*$4); if (d < 0) d = -d; if (d > 1e-6 * ($5 + 1e-30)) exit 1 }'"'"' "$tmp/m.csv"' "f = x1^2 + x2^2"

# ---- the lecture's step sizes on x^2 -------------------------------------------
for lr in 0.2 0.9 1.05; do
  "$D" playground --lr $lr --steps 10 >"$tmp/s.csv"
  # x_{t+1} / x_t = 1 - 2a, read back from the CSV (%.9g keeps float precision)
  check 'awk -F, -v a=$lr '"'"'NR>2 { r = $3 / x; d = r - (1 - 2*a); if (d < 0) d = -d; if (d > 1e-6) exit 1 } NR>1 { x = $3 }'"'"' "$tmp/s.csv"' \
    "lr $lr: ratio of successive iterates is 1-2a"
  signs=$(awk -F, 'NR>1 { printf "%s", ($3 > 0 ? "+" : "-") }' "$tmp/s.csv")
  if [ "$lr" = 0.2 ]; then want="+++++++++++"; else want="+-+-+-+-+-+"; fi
  check '[ "$signs" = "$want" ]' "lr $lr: signs $signs, want $want"
done

# ---- divergence: reported, not hidden ------------------------------------------
"$D" playground --lr 1.05 --steps 1000 >"$tmp/d.csv" 2>"$tmp/d.err"
check '[ $? -eq 0 ]' "a diverging run exits 0"
check 'grep -q "sgd diverged" "$tmp/d.err"' "divergence note on stderr: $(cat "$tmp/d.err")"
rows=$(($(wc -l <"$tmp/d.csv") - 1))
check '[ $rows -gt 100 ] && [ $rows -lt 1001 ]' "the diverged run stops early ($rows rows)"
check '! grep -qiE "inf|nan" "$tmp/d.csv"' "no inf/nan rows printed"
# bowl (Hessian 2I): GD is stable for lr*2 < 2, heavy-ball momentum 0.9 for
# lr*2 < 2*(1+0.9) = 3.8. lr 2 breaks both; lr 1.2 only plain GD.
"$D" playground --fn bowl --optimizer sgd,momentum --lr 2 --steps 3000 >"$tmp/d2.csv" 2>"$tmp/d2.err"
check '[ $? -eq 0 ] && [ "$(grep -c diverged "$tmp/d2.err")" -eq 2 ]' "one note per diverging optimizer"
check '[ "$(cut -d, -f1 "$tmp/d2.csv" | sort -u | tr "\n" " ")" = "momentum optimizer sgd " ]' "both blocks present"
"$D" playground --fn bowl --optimizer sgd,momentum --lr 1.2 --steps 3000 >"$tmp/d3.csv" 2>"$tmp/d3.err"
check 'grep -q "sgd diverged" "$tmp/d3.err" && ! grep -q "momentum diverged" "$tmp/d3.err"' "lr 1.2: sgd diverges, momentum does not"
check 'awk -F, '"'"'$1 == "momentum" && $2 == 3000 { found = 1; if ($5 > 1e-20) exit 1 } END { exit !found }'"'"' "$tmp/d3.csv"' \
  "lr 1.2: momentum converges (f < 1e-20 after 3000 updates)"

# ---- the same optimizer flags as `descent train` -------------------------------
# every flag of train's optimizer, regularisation and schedule groups
"$D" train --help | awk '/^Optimizer:/ { on = 1 } /^Training loop:/ { on = 0 } on' |
  grep -oE '^  --[a-z0-9-]+' | sort >"$tmp/train.flags"
"$D" playground --help | grep -oE '^  --[a-z0-9-]+' | sort >"$tmp/pg.flags"
check '[ "$(wc -l <"$tmp/train.flags")" -ge 20 ]' "train's optimizer flags found ($(wc -l <"$tmp/train.flags"))"
missing=$(comm -23 "$tmp/train.flags" "$tmp/pg.flags" | tr -d ' ' | tr '\n' ' ')
check '[ -z "$missing" ]' "train flags missing from playground: $missing"
# a step schedule halves lr every 2 updates; the lr column says so
"$D" playground --schedule step --step-size 2 --gamma 0.5 --lr 0.4 --steps 5 >"$tmp/lr.csv"
check 'cut -d, -f6 "$tmp/lr.csv" | tail -n +2 | awk '"'"'BEGIN { split("0.4 0.4 0.2 0.2 0.1 0.1", w, " ") } { d = $1 - w[NR]; if (d < 0) d = -d; if (d > 1e-6 * w[NR]) exit 1 } END { exit NR != 6 }'"'"'' \
  "step schedule in the lr column: $(cut -d, -f6 "$tmp/lr.csv" | tail -n +2 | tr '\n' ' ')"
# --clip-norm C bounds an sgd step by lr*C
"$D" playground --fn bowl --clip-norm 1 --lr 0.5 --steps 5 >"$tmp/c.csv"
check 'awk -F, '"'"'NR>2 { d = sqrt(($3-x)^2 + ($4-y)^2); if (d > 0.5 * (1 + 1e-5) || d < 0.5 * (1 - 1e-4)) exit 1 } NR>1 { x = $3; y = $4 }'"'"' "$tmp/c.csv"' \
  "--clip-norm 1 makes every step lr long"
for flags in "--optimizer nesterov --nesterov-form lookahead" "--optimizer momentum --momentum-form keras" \
  "--optimizer rmsprop --eps-in-sqrt --centered" "--optimizer adam --amsgrad --lr 0.3" \
  "--optimizer adagrad --lr-decay 0.1 --initial-accumulator 0.1" "--optimizer adamw --weight-decay 0.1" \
  "--schedule cosine --t-max 10 --warmup 2" "--l1 0.01 --clip-value 0.5"; do
  "$D" playground --fn ellipse --steps 10 $flags >"$tmp/f.csv" 2>"$tmp/f.err"
  check '[ $? -eq 0 ] && [ "$(wc -l <"$tmp/f.csv")" -eq 12 ]' "flags '$flags' accepted: $(cat "$tmp/f.err")"
done
# names imply momentum 0.9, as for train: momentum != sgd
"$D" playground --optimizer sgd,momentum --steps 3 >"$tmp/mm.csv"
check '[ "$(awk -F, '"'"'$2 == 3 { print $3 }'"'"' "$tmp/mm.csv" | sort -u | wc -l)" -eq 2 ]' "momentum differs from sgd"

# ---- usage errors: exit 2 with the flag named -----------------------------------
usage() {
  "$D" playground "$@" >/dev/null 2>"$tmp/u.err"
  local rc=$?
  check "[ $rc -eq 2 ]" "exit 2 for: $* (got $rc: $(cat "$tmp/u.err"))"
}
usage --x0 1,2
usage --fn bowl --x0 1
usage --fn nope
usage --x0 abc
usage --optimizer sgd,bogus
usage --optimizer sgd,sgd
usage --optimizer sgd,
usage --optimizer adam --momentum 0.9
usage --steps -1
usage --plot out.jpg
usage --preset lecture
usage --preset lecture --out "$tmp/x" --fn bowl
usage --preset other --out "$tmp/x"
usage --out "$tmp/x"
usage --backend gpu
"$D" playground --x0 1,2 2>&1 >/dev/null | grep -q -- "--x0" && ok || bad "the --x0 error names the flag"

# ---- pictures ------------------------------------------------------------------
valid_svg() { # well-formed XML when python3 is there, else the envelope
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1" 2>/dev/null
  else
    head -c 5 "$1" | grep -q '<?xml' && tail -1 "$1" | grep -q '</svg>'
  fi
}
"$D" playground --fn ellipse --optimizer sgd,momentum --lr 0.2 --plot "$tmp/e.svg" >/dev/null
check '[ $? -eq 0 ] && valid_svg "$tmp/e.svg"' "2-D --plot writes a valid SVG"
check 'grep -q "sgd, lr 0.2" "$tmp/e.svg" && grep -q "momentum, lr 0.2, μ 0.9" "$tmp/e.svg"' "legend names both runs"
"$D" playground --lr 0.9 --plot "$tmp/p.svg" >/dev/null
check '[ $? -eq 0 ] && valid_svg "$tmp/p.svg"' "1-D --plot writes a valid SVG"
"$D" playground --lr 1.05 --steps 1000 --plot "$tmp/dv.svg" >/dev/null 2>&1
check '[ $? -eq 0 ] && valid_svg "$tmp/dv.svg" && grep -q "diverged" "$tmp/dv.svg"' "a diverged run's picture says so"
# PNG: through rsvg-convert when it is on PATH; otherwise exit 2 pointing at .svg
if command -v rsvg-convert >/dev/null 2>&1; then
  "$D" playground --fn bowl --plot "$tmp/b.png" >/dev/null
  check '[ $? -eq 0 ] && [ "$(head -c 8 "$tmp/b.png" | od -An -tx1 | tr -d " \n")" = "89504e470d0a1a0a" ]' "--plot .png writes a PNG"
fi
PATH=/nonexistent "$D" playground --fn bowl --plot "$tmp/n.png" >/dev/null 2>"$tmp/n.err"
check '[ $? -eq 2 ] && grep -q "svg" "$tmp/n.err" && [ ! -e "$tmp/n.png" ]' "no rsvg-convert: exit 2, suggests .svg"

# ---- the picture comes before the CSV ----------------------------------------
# a reader that stops after one line: the picture is there all the same, and
# the command says the pipe broke (exit 1) instead of dying silently on SIGPIPE
# (3000 updates x 2 is ~400 kB of CSV, far more than a pipe holds)
"$D" playground --fn rosenbrock --optimizer adam,rmsprop --lr 0.02 --steps 3000 --plot "$tmp/pipe.svg" \
  2>"$tmp/pipe.err" | head -1 >"$tmp/pipe.head"
rc=${PIPESTATUS[0]}
check 'valid_svg "$tmp/pipe.svg"' "| head -1: the picture is written (exit $rc)"
check '[ "$(cat "$tmp/pipe.head")" = "optimizer,step,x1,x2,f,grad_norm,lr" ]' "| head -1 reads the header: $(cat "$tmp/pipe.head")"
check '[ $rc -eq 1 ] && grep -q "broken pipe" "$tmp/pipe.err"' "| head -1: exit 1 naming the broken pipe (got $rc: $(cat "$tmp/pipe.err"))"
# stdout that cannot be written at all: the picture first, then exit 1
if [ -w /dev/full ]; then
  "$D" playground --fn bowl --plot "$tmp/full.svg" >/dev/full 2>"$tmp/full.err"
  rc=$?
  check '[ $rc -eq 1 ] && valid_svg "$tmp/full.svg"' "stdout on a full disk: picture written, exit 1 (got $rc: $(cat "$tmp/full.err"))"
fi

# ---- --quiet: nothing on stderr but errors ---------------------------------------
"$D" playground --lr 1.05 --steps 1000 --quiet --plot "$tmp/q.svg" >"$tmp/q.csv" 2>"$tmp/q.err"
rc=$?
check '[ $rc -eq 0 ] && [ ! -s "$tmp/q.err" ]' "--quiet: exit 0 and no divergence note (got $rc: $(cat "$tmp/q.err"))"
check 'cmp -s "$tmp/q.csv" "$tmp/d.csv" && valid_svg "$tmp/q.svg"' "--quiet: the same CSV, and the picture"
"$D" playground --fn bowl --optimizer sgd,momentum --lr 2 --steps 3000 --quiet --backend auto >/dev/null 2>"$tmp/q2.err"
check '[ $? -eq 0 ] && [ ! -s "$tmp/q2.err" ]' "--quiet with two diverging runs and --backend auto: stderr empty ($(cat "$tmp/q2.err"))"
"$D" playground --quiet --x0 1,2 >/dev/null 2>"$tmp/q3.err"
check '[ $? -eq 2 ] && grep -q -- "--x0" "$tmp/q3.err"' "--quiet still prints errors"
"$D" playground --preset lecture --quiet --out "$tmp/lecture-q" >/dev/null 2>"$tmp/q4.err"
check '[ $? -eq 0 ] && [ ! -s "$tmp/q4.err" ] && [ "$(ls "$tmp/lecture-q" | wc -l)" -eq 7 ]' "--preset lecture --quiet"

# ---- descent plot: a log with a single row ------------------------------------------
# The x axis must run around the one update (not from it to it + 1, the point
# on the frame), and the loss axis must not be 1e-12 wide (its tick labels
# all alike). The first axes group is the loss panel's.
printf 'epoch,step,lr,train_loss,train_accuracy,test_loss,test_accuracy,grad_norm,grad_norm_fc1,update_ratio_fc1\n' >"$tmp/one.csv"
printf '1,250,0.1,2.302585,0.1,2.302585,0.1,0.5,0.4,0.01\n' >>"$tmp/one.csv"
"$D" plot "$tmp/one.csv" -o "$tmp/one.svg" 2>"$tmp/one.err"
check '[ $? -eq 0 ] && valid_svg "$tmp/one.svg"' "plot of a one-row log ($(cat "$tmp/one.err"))"
awk '/<g font-size="12"/ { on = 1 } on { print } on && /<\/g>/ { exit }' "$tmp/one.svg" >"$tmp/one.axes"
xt=$(grep -o 'text-anchor="middle">[^<]*<' "$tmp/one.axes" | sed 's/.*>//; s/<$//' | tr '\n' ' ')
yt=$(grep -o 'text-anchor="end">[^<]*<' "$tmp/one.axes" | sed 's/.*>//; s/<$//')
check 'echo "$xt" | awk '"'"'{ lo = $1; hi = $1; for (i = 1; i <= NF; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i } exit !(NF >= 3 && lo < 250 && hi > 250) }'"'"'' \
  "one row at update 250: x ticks around it: $xt"
check '[ "$(echo "$yt" | wc -l)" -ge 3 ] && [ -z "$(echo "$yt" | sort | uniq -d)" ]' "one row: loss ticks differ: $(echo $yt)"
check 'grep -q "1 log point," "$tmp/one.svg"' "one row: the subtitle says 1 log point"

"$D" playground --preset lecture --out "$tmp/lecture" >"$tmp/lecture.out"
check '[ $? -eq 0 ]' "--preset lecture exits 0"
for c in parabola-lr0.2 parabola-lr0.9 parabola-lr1.05 bowl-lr0.1 bowl-lr0.9 ellipse-lr0.2 saddle-momentum; do
  check 'valid_svg "$tmp/lecture/playground-$c.svg"' "preset picture $c"
done
check '[ "$(ls "$tmp/lecture" | wc -l)" -eq 7 ]' "one picture per case"

# ---- --backend cuda: the CUDA kernel where a GPU is, else exit 77 ----------------
"$D" playground --fn ellipse --optimizer sgd,adam --steps 20 --backend cuda >"$tmp/gpu.csv" 2>/dev/null
rc=$?
if [ $rc -eq 0 ]; then
  "$D" playground --fn ellipse --optimizer sgd,adam --steps 20 --backend cpu >"$tmp/cpu.csv"
  # same arithmetic in the same order; 1e-5 leaves room for FMA contraction
  check 'paste -d, "$tmp/cpu.csv" "$tmp/gpu.csv" | awk -F, '"'"'NR>1 { for (i = 3; i <= 5; i++) { d = $i - $(i+7); if (d < 0) d = -d; if (d > 1e-5 * (1 + ($i < 0 ? -$i : $i))) exit 1 } }'"'"'' \
    "cuda rows match cpu rows"
else
  check '[ $rc -eq 77 ]' "--backend cuda without a GPU exits 77 (got $rc)"
fi

echo "test_playground_cli.sh: $pass passed, $fail failed"
[ $fail -eq 0 ]
