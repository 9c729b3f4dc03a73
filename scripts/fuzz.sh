#!/usr/bin/env bash
# Coverage-guided fuzzing of the native helper (libFuzzer, AddressSanitizer + UndefinedBehaviorSanitizer),
# and of the Python parsers when fuzz/python/fuzz_*.py exist (atheris).
#
#   scripts/fuzz.sh [--minutes N | --seconds N] [--runs N] [TARGET...]
#
# TARGET: reader, producer (fuzz/native/fuzz_*.c) or the X of a fuzz/python/fuzz_X.py; default: all.
# Each target runs N minutes (default 60 s), or until N executions with --runs (then without a time limit).
# The Looking Glass B7 and master dumps in ../shared/fixtures/lg-b7 and lg-master, when present, are
# turned into extra reader seeds at run time (in build/fuzz, never in the repository).
# Prints executions and findings per target; exits 1 on any finding, 2 when a tool is missing, 3 when a
# fuzzer stopped with an error but left no crash-/leak-/timeout-/oom- input (a harness error, not a finding).
# Findings are kept in build/fuzz/findings/<target>/ (reproduce: build/fuzz/fuzz_<target> FILE).
# Several runs at once are fine: each builds, logs, writes new inputs and findings in its own folder
# (mktemp -d build/fuzz/run.XXXXXX, removed at the end); new inputs are then copied into
# build/fuzz/corpus/<target>/ (file names are content hashes, each renamed in whole, never deleted),
# which later runs read along with the committed seeds.
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
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# This run's own folder: nothing in it is shared with another run of this script.
RUN=$(mktemp -d "$OUT/run.XXXXXX") || { echo "fuzz.sh: cannot create a folder under $OUT" >&2; exit 2; }
trap 'rm -rf "$RUN"' EXIT

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
        native/lgmp_producer.c -pthread -o "$RUN/fuzz_$t" 2>"$RUN/build_$t.log" || {
        echo "fuzz.sh: building fuzz_$t failed:" >&2; cat "$RUN/build_$t.log" >&2; exit 2; }
    # For replaying findings: a copy renamed into place, so a run using the old one is not disturbed.
    cp "$RUN/fuzz_$t" "$RUN/fuzz_$t.copy" && mv -f "$RUN/fuzz_$t.copy" "$OUT/fuzz_$t"
}

# The Looking Glass dumps (lg-b7, lg-master) as reader seeds, made at run time into a scratch folder.
dump_seeds() {   # fixture folder name
    local fixtures=$REPO/../shared/fixtures/$1 dir=$OUT/$1-seeds mine=$RUN/$1-seeds
    [ -d "$fixtures" ] || return 0
    if [ ! -d "$dir" ]; then   # made in our own folder, then renamed into place whole: if it exists, it is complete
        mkdir -p "$mine"
        for f in "$fixtures"/*.bin.gz; do
            PYTHONPATH=$REPO "$PY" fuzz/native/make_seeds.py dump "$f" "$mine" >&2 || return 1
        done
        mv -T "$mine" "$dir" 2>/dev/null || { echo "$mine"; return 0; }   # another run was first: use ours
    fi
    echo "$dir"
}

# This run's new inputs into build/fuzz/corpus/<target>/: each copied into our folder, then renamed in, so a
# run reading that folder meanwhile never sees half a file; names are content hashes, so a clash is the same input.
merge_corpus() {   # work_dir shared_dir
    local f name
    mkdir -p "$2"
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        name=${f##*/}
        [ -e "$2/$name" ] && continue
        cp "$f" "$RUN/merging" && mv -f "$RUN/merging" "$2/$name"   # same file system: an atomic rename
    done
}

status=0
summary=()

report() {   # target log artifacts_dir rc elapsed_s
    local t=$1 log=$2 art=$3 rc=$4 took=$5
    local execs rate findings kept=$OUT/findings/$t
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    [ -n "$execs" ] || execs=0
    # Only this run's artifacts (its own folder): a finding is an input that crashed, leaked, hung or ran
    # out of memory; a slow unit is not one.
    findings=$(find "$art" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' \) | wc -l)
    rate=$(( execs / (took > 0 ? took : 1) ))
    mkdir -p "$kept"
    find "$art" -type f ! -name 'slow-unit-*' -exec mv -f {} "$kept/" \;
    cp "$log" "$log.copy" && mv -f "$log.copy" "$OUT/$t.log"   # the last run's log, for a look afterwards
    if [ "$findings" -ne 0 ]; then
        status=1
        cp "$log" "$kept/${RUN##*/}.log"
        summary+=("$(printf '%-12s %12s executions in %4d s (%s/s), %d finding(s)' "$t" "$execs" "$took" "$rate" "$findings")")
        echo "fuzz.sh: $t: FINDING (rc $rc); the input is in $kept/, the report in $kept/${RUN##*/}.log:" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|fuzz_producer:|Test unit written' "$log" | head -20 >&2
    elif [ "$rc" -ne 0 ]; then
        # The fuzzer stopped with an error but no input caused it (a missing folder, a bad flag, killed,
        # out of disk): the harness failed, which says nothing about the code under test.
        [ "$status" -eq 1 ] || status=3
        cp "$log" "$kept/${RUN##*/}.harness-error.log"
        summary+=("$(printf '%-12s %12s executions in %4d s (%s/s), 0 finding(s), HARNESS ERROR (rc %d)' "$t" "$execs" "$took" "$rate" "$rc")")
        echo "fuzz.sh: $t: harness error, not a finding: the fuzzer exited with status $rc and left no crash, leak," \
             "timeout or oom input; its log is $kept/${RUN##*/}.harness-error.log:" >&2
        tail -5 "$log" >&2
    else
        summary+=("$(printf '%-12s %12s executions in %4d s (%s/s), %d finding(s)' "$t" "$execs" "$took" "$rate" "$findings")")
    fi
}

for t in "${targets[@]}"; do
    art=$RUN/findings/$t/
    work=$RUN/corpus/$t          # this run's new inputs (libFuzzer writes into the first folder only)
    shared=$OUT/corpus/$t        # earlier runs' inputs, read only here
    mkdir -p "$art" "$work" "$shared"
    log=$RUN/$t.log
    if is_native "$t"; then
        build_native "$t"
        seeds=("$REPO/fuzz/native/corpus/$t")
        if [ "$t" = reader ]; then
            for lg in lg-b7 lg-master; do
                more=$(dump_seeds "$lg") || { echo "fuzz.sh: cannot make seeds from the $lg dumps" >&2; exit 2; }
                [ -n "$more" ] && seeds+=("$more")
            done
        fi
        echo "fuzz.sh: $t for $seconds s / $runs runs (log $OUT/$t.log afterwards)" >&2
        started=$SECONDS   # the fuzzing itself, not the build: executions per second mean that
        "$RUN/fuzz_$t" -max_total_time="$seconds" -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
            -print_final_stats=1 -artifact_prefix="$art" "$work" "${seeds[@]}" "$shared" >"$log" 2>&1
        rc=$?
    elif is_python "$t"; then
        corpus=$REPO/fuzz/python/corpus/$t
        [ -d "$corpus" ] || corpus=$REPO/fuzz/python/corpus/fuzz_$t
        mkdir -p "$corpus"
        echo "fuzz.sh: python $t for $seconds s (log $OUT/$t.log afterwards)" >&2
        started=$SECONDS
        PYTHONPATH=$REPO "$PY" "fuzz/python/fuzz_$t.py" -max_total_time="$seconds" -runs="$runs" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$art" "$work" "$corpus" "$shared" >"$log" 2>&1
        rc=$?
    else
        echo "fuzz.sh: no target $t (native: ${native_targets[*]}; python: ${python_targets[*]:-none})" >&2
        exit 2
    fi
    merge_corpus "$work" "$shared"
    report "$t" "$log" "$art" "$rc" $((SECONDS - started))
done

printf '%s\n' "${summary[@]}"
exit $status
