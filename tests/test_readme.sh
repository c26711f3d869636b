#!/usr/bin/env bash
# The README is true to the binary.
#  1. Flags: every flag a command's --help lists is in README.md, every
#     --flag README.md names is one that some command's --help lists, and every
#     literal value --help lists (--init he-normal|..., --sampling ...) appears
#     in README.md as code (a `span` or a ```sh block).
#  2. Examples: every `descent ...` line of README.md's ```sh blocks runs, in
#     README order, in a scratch folder, shortened so the suite stays well under
#     90 s on 2 cores (about 20 s; see rewrite_*), and exits 0 (verify: 77
#     without CUDA).
# README=path checks another copy (how a broken README is shown to fail).
# Needs Fashion-MNIST ($DS_FASHION_DIR, default /usr/share/datasets/fashion-mnist)
# for the examples: without it they are skipped (exit 77 when the flags pass).
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
SRC=${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
README=${README:-$SRC/README.md}
FASHION=${DS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}

# Not descent flags, yet written as --flag in README.md's prose. Commands of
# other tools inside ```sh blocks (make, cmake, ctest, scripts/...) are skipped
# without being listed here (see readme_flag_tokens).
ALLOWED_UNKNOWN=(
  --epoch --batch_size --learning-rate # misspellings descent answers with "did you mean"
  --output-on-failure                  # ctest
  --no-flush                           # bench/bench_optim and bench/pytorch_baseline.py
)
# Example budget: updates per `descent train` example (see rewrite_train).
TRAIN_STEPS=30
TRAIN_STEPS_MAX=60
PLAYGROUND_STEPS_MAX=300

[ -r "$README" ] || { echo "FAIL: no README at $README" >&2; exit 1; }
# the examples run in a scratch folder: make the paths given absolute
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
D=$(abspath "$D") README=$(abspath "$README") SRC=$(abspath "$SRC") FASHION=$(abspath "$FASHION")
W=$(mktemp -d "${TMPDIR:-/tmp}/ds-test-readme-XXXXXX")
trap 'rm -rf "$W"' EXIT
started=$(date +%s)
fails=0
checks=0
fail() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
ok() { checks=$((checks + 1)); }

# ---- what --help lists ---------------------------------------------------------

# commands: the subcommands `descent --help` lists
commands() {
  "$D" --help | awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }'
}

# help_text: the top-level help and every command's, each line prefixed "CMD\t"
help_text() {
  "$D" --help | sed 's/^/descent\t/'
  local c
  for c in $(commands); do "$D" "$c" --help | sed "s/^/$c\t/"; done
}

# help_flags: "FLAG CMD" for every flag line (two-space indent, then -x or --x)
help_flags() {
  awk -F'\t' '$2 ~ /^  -/ { split($2, f, " "); print f[1], $1 }' "$W/help" | sort -u
}

# help_values: "VALUE FLAG" for each literal value in a flag's argument: the
# lower-case alternatives of `--init auto|he-normal|...`, `--batch-size N|full`,
# `--preset lecture` (placeholders such as N, FILE.svg are upper-case). The
# flag and its argument end where two blanks start the description.
help_values() {
  awk -F'\t' '$2 ~ /^  --/ {
    spec = substr($2, 3); sub(/  .*/, "", spec)
    split(spec, f, " "); n = split(f[2], alt, "|")
    for (i = 1; i <= n; i++) if (alt[i] ~ /^[a-z][a-z0-9_-]*$/) print alt[i], f[1]
  }' "$W/help" | sort -u
}

# ---- what README.md says -------------------------------------------------------

# readme_flag_tokens: "LINE TOKEN" for each --flag in README.md, except on the
# lines of a ```sh block that belong to another program's command
readme_flag_tokens() {
  awk '
    /^```/ { fence = !fence; other = 0; cont = 0; next }
    {
      line = $0
      if (fence && !cont && line !~ /^[ \t]*(#|$)/) {   # a new command: whose?
        w = line; sub(/^[ \t]+/, "", w); sub(/[ \t].*/, "", w)
        other = (w != "descent")
      }
      cont = fence && line ~ /\\$/
      if (fence && other) next
      while (match(line, /(^|[^A-Za-z0-9_-])--[A-Za-z][A-Za-z0-9_-]*/)) {
        tok = substr(line, RSTART, RLENGTH); sub(/^[^-]/, "", tok)
        print NR, tok
        line = substr(line, RSTART + RLENGTH)
      }
    }' "$README"
}

# readme_code: the text README.md shows as code: ```sh blocks and `spans`
# (a span may run over a line break)
readme_code() {
  awk '
    /^```/ { fence = !fence; next }
    fence { print; next }
    { prose = prose $0 "\n" }
    END {
      while (match(prose, /`[^`]*`/)) {
        print substr(prose, RSTART, RLENGTH)
        prose = substr(prose, RSTART + RLENGTH)
      }
    }' "$README"
}

# mentions FILE WORD: WORD occurs in FILE as a whole token (not inside a longer
# flag or word: --step is not in --step-size)
mentions() {
  grep -Eq -- "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|$)" "$1"
}

# ---- 1. flags ------------------------------------------------------------------

check_flags() {
  help_text >"$W/help"
  help_flags >"$W/help-flags"
  [ -s "$W/help-flags" ] || { fail "no flags found in descent's --help"; return; }

  # every flag --help lists is in README.md
  local flag cmds
  while read -r flag; do
    cmds=$(awk -v f="$flag" '$1 == f { printf "%s%s", s, $2; s = ", " }' "$W/help-flags")
    ok
    mentions "$README" "$flag" || fail "README.md does not mention $flag ($cmds --help lists it)"
  done < <(awk '{ print $1 }' "$W/help-flags" | uniq)

  # every --flag README.md names is a flag of some command
  local line tok a
  while read -r line tok; do
    for a in "${ALLOWED_UNKNOWN[@]}"; do [ "$tok" = "$a" ] && continue 2; done
    ok
    awk -v f="$tok" '$1 == f { found = 1 } END { exit !found }' "$W/help-flags" ||
      fail "README.md:$line: $tok is no flag of any descent command"
  done < <(readme_flag_tokens)

  # every literal value --help lists appears as code
  readme_code >"$W/code"
  local value flags
  while read -r value; do
    flags=$(awk -v v="$value" '$1 == v { printf "%s%s", s, $2; s = " " }' "$W/values-all")
    ok
    mentions "$W/code" "$value" || fail "README.md does not show the value '$value' ($flags) as code"
  done < <(help_values | tee "$W/values-all" | awk '{ print $1 }' | uniq)
}

# ---- 2. examples ---------------------------------------------------------------

# readme_examples: "LINE\tCOMMAND" for each `descent ...` line of a ```sh block,
# continuation lines (ending in \) joined
readme_examples() {
  awk '
    /^```sh/ { fence = 1; next }
    /^```/ { fence = 0; next }
    !fence { next }
    cmd != "" { cmd = cmd " " $0 }
    cmd == "" && /^[ \t]*descent / { cmd = $0; start = NR }
    cmd != "" {
      if (cmd ~ /\\$/) { sub(/\\$/, "", cmd); next }
      sub(/^[ \t]+/, "", cmd); printf "%d\t%s\n", start, cmd; cmd = ""
    }' "$README"
}

# split_words: the words of the shell command line on stdin, one a line, as
# the shell would split them without expanding anything: quotes and
# backslashes removed, a word starting with # ends the line (a comment)
split_words() {
  awk '{
    s = $0; n = length(s); w = ""; inw = 0; q = ""
    for (i = 1; i <= n; i++) {
      c = substr(s, i, 1)
      if (q == "\047") { if (c == q) q = ""; else w = w c; continue }
      if (q == "\"") {
        if (c == q) q = ""
        else if (c == "\\" && i < n && index("\"\\$`", substr(s, i + 1, 1))) { i++; w = w substr(s, i, 1) }
        else w = w c
        continue
      }
      if (c == " " || c == "\t") { if (inw) print w; w = ""; inw = 0; continue }
      if (c == "#" && !inw) break
      inw = 1
      if (c == "\047" || c == "\"") q = c
      else if (c == "\\" && i < n) { i++; w = w substr(s, i, 1) }
      else w = w c
    }
    if (inw) print w
  }'
}

# The rewrites work on the array args (the words after `descent`).
# has FLAG: the flag is there (as --flag V or --flag=V)
has() {
  local a
  for a in "${args[@]}"; do [ "$a" = "$1" ] || [ "${a%%=*}" = "$1" ] && return 0; done
  return 1
}
# value FLAG: its value (the last one when given twice)
value() {
  local i v=""
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      "$1") v=${args[i + 1]:-} ;;
      "$1="*) v=${args[i]#*=} ;;
    esac
  done
  printf '%s' "$v"
}
# set_flag FLAG VALUE: replace every value of FLAG, or append FLAG VALUE
set_flag() {
  local i found=0
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      "$1") args[i + 1]=$2; found=1 ;;
      "$1="*) args[i]="$1=$2"; found=1 ;;
    esac
  done
  [ "$found" = 1 ] || args+=("$1" "$2")
}

# rewrite_train: one short run on the CPU. --epochs N becomes 1 and --steps
# bounds the updates; the flags keep their meaning otherwise.
rewrite_train() {
  set_flag --backend cpu
  has --epochs && set_flag --epochs 1
  if has --steps; then
    [ "$(value --steps)" -gt "$TRAIN_STEPS_MAX" ] 2>/dev/null && set_flag --steps "$TRAIN_STEPS_MAX"
  elif has --resume; then
    # --steps counts from the run's start, and the checkpoint an earlier example
    # wrote is at update $TRAIN_STEPS: twice that continues the run
    set_flag --steps $((2 * TRAIN_STEPS))
  elif [ "$(value --batch-size)" = full ]; then
    # one update is a pass over all 60,000 images (5 s on 2 cores)
    set_flag --steps 1
  else
    set_flag --steps "$TRAIN_STEPS"
  fi
}

# rewrite_playground: at most PLAYGROUND_STEPS_MAX updates per optimizer
rewrite_playground() {
  if has --steps && [ "$(value --steps)" -gt "$PLAYGROUND_STEPS_MAX" ] 2>/dev/null; then
    set_flag --steps "$PLAYGROUND_STEPS_MAX"
  fi
}

# make_idx KIND PATH: a small IDX file the user "would have": the first 2000
# images (KIND images) or labels of Fashion-MNIST's test set, gzipped when
# PATH ends in .gz
make_idx() {
  local kind=$1 path=$2 n=2000 src magic skip size
  if [ "$kind" = images ]; then
    src=$(find_idx t10k-images-idx3-ubyte); magic='\x00\x00\x08\x03'; skip=16; size=$((n * 784))
  else
    src=$(find_idx t10k-labels-idx1-ubyte); magic='\x00\x00\x08\x01'; skip=8; size=$n
  fi
  mkdir -p "$(dirname "$path")"
  # shellcheck disable=SC2094 # $path is only written
  {
    printf '%b' "$magic"
    be32 "$n"
    [ "$kind" = images ] && printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'
    gzip -dcf "$src" | tail -c +$((skip + 1)) | head -c "$size"
  } | if [ "${path%.gz}" != "$path" ]; then gzip -c; else cat; fi >"$path"
}

# be32 N: N as 4 bytes, big-endian (IDX header fields)
be32() {
  local h
  h=$(printf '%08x' "$1")
  printf '%b' "\\x${h:0:2}\\x${h:2:2}\\x${h:4:2}\\x${h:6:2}"
}

# find_idx STEM: the Fashion-MNIST file STEM.gz or STEM
find_idx() {
  if [ -r "$FASHION/$1.gz" ]; then echo "$FASHION/$1.gz"; elif [ -r "$FASHION/$1" ]; then echo "$FASHION/$1"; fi
}

# rewrite_data: files the user would have. --data DIR (~/mnist) becomes a
# folder of links to Fashion-MNIST; --train-images imgs.gz and the like are
# made small when they do not exist.
rewrite_data() {
  has --data && set_flag --data "$W/data"
  local f path kind
  for f in --train-images --train-labels --test-images --test-labels; do
    has "$f" || continue
    path=$(value "$f")
    # shellcheck disable=SC2088 # a literal ~ from README.md, never expanded
    case $path in "~/"*) path=$W/home/${path#"~/"}; set_flag "$f" "$path" ;; esac
    kind=labels; [ "${f%images}" != "$f" ] && kind=images
    [ -e "$path" ] || make_idx "$kind" "$path"
  done
}

# rewrite_report: the sweep result files a report example reads, where no
# example before it wrote them, are made up by tests/test_report.py's
# generator (documented format, invented numbers); without python3 the
# example is skipped.
rewrite_report() {
  local a
  for a in "${args[@]:1}"; do
    case $a in
      --*) break ;;
      *.jsonl) [ -e "$a" ] || python3 "$SRC/tests/test_report.py" --generate "$a" || return 1 ;;
    esac
  done
  return 0
}

# make_output_folders: an output under a folder (docs/training-log.svg) gets
# the folder, as in the repository root the README's commands run from
make_output_folders() {
  local f path
  for f in -o --output --plot --log --save; do
    path=$(value "$f")
    case $path in */*) [ "${path#/}" = "$path" ] && mkdir -p "$(dirname "$path")" ;; esac
  done
}

# wants_png: the example writes a .png (needs rsvg-convert)
wants_png() {
  local a
  for a in "${args[@]}"; do case $a in *.png) return 0 ;; esac; done
  return 1
}

# show_cmd: the rewritten command, as one could paste it
show_cmd() {
  local a out=descent
  for a in "${args[@]}"; do
    if [[ $a =~ ^[A-Za-z0-9_./,:=+@%-]+$ ]]; then out+=" $a"; else out+=" '$a'"; fi
  done
  printf '%s' "$out"
}

prepare_data() {
  mkdir -p "$W/data" "$W/run"
  local stem src
  for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    src=$(find_idx "$stem")
    [ -n "$src" ] || return 1
    ln -s "$src" "$W/data/$(basename "$src")"
  done
}

# rewrite_sweep: the sweep as written, with one seed and --steps bounded as a
# train example's (every trial is a `descent train`)
rewrite_sweep() {
  has --seeds && set_flag --seeds 1
  if has --steps && [ "$(value --steps)" -gt "$TRAIN_STEPS_MAX" ] 2>/dev/null; then set_flag --steps "$TRAIN_STEPS_MAX"; fi
  has --epochs && set_flag --epochs 1
  return 0
}

run_examples() {
  local line cmd want rc t0 n=0 skipped=0
  # verify exits 77 where CUDA is not compiled in; with CUDA, 77 when no GPU is found
  local verify_want="0|77"
  "$D" --version | grep -q '^cuda: not compiled in' && verify_want=77
  # relative paths (best.ckpt, run.csv, pictures/, imgs.gz) land in the scratch folder
  cd "$W/run" || return
  while IFS=$'\t' read -r line cmd; do
    mapfile -t args < <(printf '%s\n' "$cmd" | split_words)
    args=("${args[@]:1}") # drop "descent"
    want=0
    # `descent train --help` is run as written
    has --help || has --version || case ${args[0]:-} in
      train) rewrite_train; rewrite_data ;;
      eval) set_flag --backend cpu; rewrite_data ;;
      verify) want=$verify_want; rewrite_data ;;
      playground) rewrite_playground ;;
      sweep) rewrite_sweep; rewrite_data ;;
      report)
        "$D" --version | grep -q '^json: not compiled in' && want=1
        if ! command -v python3 >/dev/null || ! rewrite_report; then
          echo "skipped (no python3, or its generator failed, to make its input): README.md:$line: $cmd"
          skipped=$((skipped + 1))
          continue
        fi ;;
    esac
    if wants_png && ! command -v rsvg-convert >/dev/null; then
      echo "skipped (no rsvg-convert): README.md:$line: $cmd"
      skipped=$((skipped + 1))
      continue
    fi
    n=$((n + 1))
    ok
    make_output_folders
    t0=$SECONDS
    # DESCENT_MNIST_DIR: `--dataset mnist` finds digits' stand-in there
    DESCENT_MNIST_DIR=$W/data timeout 300 "$D" "${args[@]}" >"$W/out" 2>"$W/err" </dev/null
    rc=$?
    echo "README.md:$line: exit $rc in $((SECONDS - t0))s: $(show_cmd)"
    if ! [[ "$rc" =~ ^($want)$ ]]; then
      fail "README.md:$line: $cmd
  ran: $(show_cmd) (in $W/run)
  exit $rc, want $want; stderr ends:
$(tail -n 5 "$W/err" | sed 's/^/    /')"
    fi
  done < <(readme_examples)
  cd - >/dev/null || return
  echo "test_readme: $n examples run, $skipped skipped"
  [ "$n" -gt 0 ] || fail "README.md has no \`descent ...\` example in a \`\`\`sh block"
}

# ---- main ----------------------------------------------------------------------

check_flags
examples_skipped=0
if prepare_data; then
  run_examples
else
  echo "test_readme: no Fashion-MNIST in $FASHION: the examples are skipped"
  examples_skipped=1
fi

secs=$(($(date +%s) - started))
if [ "$fails" != 0 ]; then
  echo "test_readme: $fails of $checks checks FAILED (${secs}s)" >&2
  exit 1
fi
if [ "$examples_skipped" = 1 ]; then
  echo "test_readme: all $checks flag checks passed, the examples skipped (${secs}s)"
  exit 77
fi
echo "test_readme: all $checks checks passed (${secs}s)"
