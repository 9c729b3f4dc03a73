#!/usr/bin/env bash
# Coverage-guided fuzzing of the native helper (libFuzzer, AddressSanitizer + UndefinedBehaviorSanitizer),
# and of the Python parsers when fuzz/python/fuzz_*.py exist (atheris).
#
#   scripts/fuzz.sh [--minutes N | --seconds N] [--runs N] [TARGET...]
#
# TARGET: reader, producer (fuzz/native/fuzz_*.c) or the X of a fuzz/python/fuzz_X.py; default: all.
# Each target runs N minutes (default 60 s), or until N executions with --runs (then without a time limit). The Looking Glass B7 dumps in ../shared/fixtures/lg-b7, when
# present, are turned into extra reader seeds at run time (in build/fuzz, never in the repository).
# Prints executions and findings per target; exits 1 on any finding, 2 when a tool is missing.
# Findings are kept in build/fuzz/findings/<target>/ (reproduce: build/fuzz/fuzz_<target> FILE).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD

seconds=60
runs=-1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) seconds=$(( ${2:?--minutes needs a number} * 60 )); shift 2 ;;
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; seconds=0; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (--minutes N, --seconds N, --runs N)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
    for c in clang-14 clang; do command -v "$c" >/dev/null 2>&1 && { CLANG=$c; break; }; done
fi
PY=${PYTHON:-$REPO/.venv/bin/python}
OUT=$REPO/build/fuzz
mkdir -p "$OUT"

native_targets=()
for f in fuzz/native/fuzz_*.c; do t=${f#fuzz/native/fuzz_}; native_targets+=("${t%.c}"); done
python_targets=()
for f in fuzz/python/fuzz_*.py; do [ -e "$f" ] || continue; t=${f#fuzz/python/fuzz_}; python_targets+=("${t%.py}"); done
if [ ${#targets[@]} -eq 0 ]; then targets=("${native_targets[@]}" "${python_targets[@]}"); fi

is_native() { local t; for t in "${native_targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }
is_python() { local t; for t in "${python_targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

build_native() {
    local t=$1
    if [ -z "$CLANG" ]; then
        echo "fuzz.sh: clang is not installed: apt-get install \$(cat scripts/deps/apt-test-fuzz.txt)" >&2
        exit 2
    fi
    # Short waits in the helper (same logic): an input that holds a lock or stalls the write pointer
    # costs microseconds instead of a second. KV_FUZZ_ASSERTS traps on a misaligned atomic access,
    # which x86 does silently and UBSan does not check.
    "$CLANG" -g -O1 -std=gnu11 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -DKV_FUZZ_ASSERTS -DKV_LOCK_TIMEOUT_MS=1 -DKV_WP_STALL_NS=20000 -DKV_FRAME_DEADLINE_NS=200000 -DKV_SHARED_LOCK_TIMEOUT_US=200 \
        -Inative -Ifuzz/native "fuzz/native/fuzz_$t.c" native/common.c native/guard.c native/lgmp_client.c \
        native/lgmp_producer.c -pthread -o "$OUT/fuzz_$t" 2>"$OUT/build_$t.log" || {
        echo "fuzz.sh: building fuzz_$t failed:" >&2; cat "$OUT/build_$t.log" >&2; exit 2; }
}

# The B7 dumps as reader seeds, made at run time into a scratch folder.
b7_seeds() {
    local fixtures=$REPO/../shared/fixtures/lg-b7 dir=$OUT/seeds-b7
    [ -d "$fixtures" ] || return 0
    if [ ! -d "$dir" ] || [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
        mkdir -p "$dir"
        for f in "$fixtures"/*.bin.gz; do
            PYTHONPATH=$REPO "$PY" fuzz/native/make_seeds.py dump "$f" "$dir" || return 1
        done
    fi
    echo "$dir"
}

status=0
summary=()

report() {   # target log artifacts_dir rc elapsed_s
    local t=$1 log=$2 art=$3 rc=$4 took=$5
    local execs rate findings
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    [ -n "$execs" ] || execs=0
    findings=$(find "$art" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) -newer "$log.start" 2>/dev/null | grep -vc 'slow-unit-')
    if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then findings=1; fi
    rate=$(( execs / (took > 0 ? took : 1) ))
    summary+=("$(printf '%-12s %12s executions in %4d s (%s/s), %d finding(s)' "$t" "$execs" "$took" "$rate" "$findings")")
    if [ "$findings" -ne 0 ]; then
        status=1
        echo "fuzz.sh: $t: FINDING (rc $rc); the input and report are in $art and $log:" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|fuzz_producer:|Test unit written' "$log" | head -20 >&2
    fi
}

for t in "${targets[@]}"; do
    art=$OUT/findings/$t/
    work=$OUT/corpus/$t
    mkdir -p "$art" "$work"
    log=$OUT/$t.log
    touch "$log.start"
    started=$SECONDS
    if is_native "$t"; then
        build_native "$t"
        seeds=("$REPO/fuzz/native/corpus/$t")
        if [ "$t" = reader ]; then
            b7=$(b7_seeds) || { echo "fuzz.sh: cannot make seeds from the B7 dumps" >&2; exit 2; }
            [ -n "$b7" ] && seeds+=("$b7")
        fi
        echo "fuzz.sh: $t for $seconds s / $runs runs (log $log)" >&2
        "$OUT/fuzz_$t" -max_total_time="$seconds" -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
            -print_final_stats=1 -artifact_prefix="$art" "$work" "${seeds[@]}" >"$log" 2>&1
        rc=$?
    elif is_python "$t"; then
        corpus=$REPO/fuzz/python/corpus/$t
        [ -d "$corpus" ] || corpus=$REPO/fuzz/python/corpus/fuzz_$t
        mkdir -p "$corpus"
        echo "fuzz.sh: python $t for $seconds s (log $log)" >&2
        PYTHONPATH=$REPO "$PY" "fuzz/python/fuzz_$t.py" -max_total_time="$seconds" -runs="$runs" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$art" "$work" "$corpus" >"$log" 2>&1
        rc=$?
    else
        echo "fuzz.sh: no target $t (native: ${native_targets[*]}; python: ${python_targets[*]:-none})" >&2
        exit 2
    fi
    report "$t" "$log" "$art" "$rc" $((SECONDS - started))
done

printf '%s\n' "${summary[@]}"
exit $status
