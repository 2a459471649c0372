#!/usr/bin/env bash
# Runs every export of the native addon (test/reliability/children/native-exercise.mjs: success paths, error paths,
# panic hooks, async twins) under valgrind memcheck and summarises it.
#
#   bash scripts/valgrind-native.sh              # AC_EXERCISE_REPS=3 repetitions (default)
#   AC_EXERCISE_REPS=10 bash scripts/valgrind-native.sh
#
# Exit status: valgrind's (--error-exitcode=1 on any memcheck error or definitely/indirectly lost block whose stack
# goes through the addon) or the exercise script's own status. Node/V8 itself is not what is being checked: its
# own "possibly lost" blocks (JIT, isolates) and still-reachable memory are not errors; leaks are counted as errors
# only when definite/indirect. The full log is kept in $VG_LOG (default target/valgrind-native.log).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
[ -f dist/bindings/native.js ] || npx tsc -p tsconfig.json
ADDON=bindings/native/anomaly-clustering.linux-x64-gnu.node
[ -f "$ADDON" ] || { echo "no native addon at $ADDON (npm run build:native)" >&2; exit 2; }
LOG=${VG_LOG:-target/valgrind-native.log}
mkdir -p "$(dirname "$LOG")"
SUPP=$(mktemp)
trap 'rm -f "$SUPP"' EXIT
# Node's own one-time allocations that memcheck cannot see freed (process-lifetime singletons).
cat >"$SUPP" <<'SUPP_EOF'
{
   node-v8-platform-and-isolate-singletons
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   ...
   fun:_ZN4node*
}
SUPP_EOF
start=$(date +%s)
set +e
# Threads: the rayon pool of the addon is exercised with 2 workers. --jitless keeps V8 from generating code that
# confuses memcheck; --max-semi-space-size reduces GC churn under the slow emulation.
RUST_BACKTRACE=0 ANOMALY_CLUSTERING_THREADS=${ANOMALY_CLUSTERING_THREADS:-2} UV_THREADPOOL_SIZE=2 \
nice valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=no --num-callers=30 --suppressions="$SUPP" \
  --log-file="$LOG" \
  node --jitless test/reliability/children/native-exercise.mjs
status=$?
set -e
secs=$(( $(date +%s) - start ))
echo "---- valgrind summary (${secs}s, full log: $LOG)"
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$LOG" | sed 's/^==[0-9]*== */  /'
addon_frames=$(grep -c "anomaly-clustering.linux-x64-gnu.node\|ac_node\|ac_kernels" "$LOG" || true)
echo "  stack frames in the addon within reported errors/leaks: $addon_frames"
echo "  exit status: $status"
exit $status
