#!/usr/bin/env bash
# Tests scripts/kafka against the real broker: start a cluster in a folder of
# its own, check the output contract, produce and consume 10 records with kcat
# (plainly and in a consumer group, which needs Kafka 4.1.x with Debian's
# librdkafka 2.0.2), stop it, and check that no process and no file is left.
# Then the refusals: a folder that is not ours is neither used nor removed.
#
# Usage: tests/scripts/kafka_script_test.sh [--nodes N]   (default 1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA="$ROOT/scripts/kafka"
NODES=1
if [[ "${1:-}" == --nodes ]]; then NODES="$2"; fi

passed=0 failed=0
pass() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION CONDITION: evaluates the shell CONDITION.
  if eval "$2"; then pass "$1"; else fail "$1"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

DIR="$(mktemp -d)"
OTHER="$(mktemp -d)"
# Whatever happens, leave nothing behind; --owner below covers a kill -9.
trap 'bash "$KAFKA" stop --dir "$DIR" --grace 0 2>/dev/null || true; rm -rf "$OTHER"' EXIT

# --- start: the bootstrap address is the only line on stdout ---------------
t0=$SECONDS
if ! out="$(bash "$KAFKA" start --nodes "$NODES" --dir "$DIR" --owner $$)"; then
  fail "scripts/kafka start --nodes $NODES exited non-zero"
  finish
  exit 1
fi
echo "     started $NODES node(s) in $((SECONDS - t0))s: $out"
pattern="^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){$((NODES - 1))}$"
check "stdout is one bootstrap address of $NODES node(s): '$out'" '[[ "$out" =~ $pattern ]]'
check "DIR/bootstrap holds the same address" '[[ "$(cat "$DIR/bootstrap")" == "$out" ]]'
check "status prints it too" '[[ "$(bash "$KAFKA" status --dir "$DIR" 2>/dev/null)" == "$out" ]]'

# --- produce and consume 10 records -------------------------------------------
topic="script-test-$RANDOM"
expected="$(seq -f 'record-%g' 1 10 | sort)"
check "kcat produced 10 records" 'seq -f "record-%g" 1 10 | kcat -P -b "$out" -t "$topic" -X acks=all'
got="$(timeout 60 kcat -C -b "$out" -t "$topic" -o beginning -e -q | sort)"
check "kcat consumed the same 10 records" '[[ "$got" == "$expected" ]]'
got="$(timeout 60 kcat -b "$out" -G "group-$topic" -X auto.offset.reset=earliest -c 10 -q "$topic" 2>/dev/null | sort)"
check "a consumer group consumed the same 10 records" '[[ "$got" == "$expected" ]]'

# --- stop: no process, no folder ----------------------------------------------
pids="$(cat "$DIR"/node*/pid "$DIR/watcher.pid")"
check "stop succeeds" 'bash "$KAFKA" stop --dir "$DIR"'
alive=""
for pid in $pids; do
  # A zombie has exited; it waits only for init to reap it.
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)"
  if [[ -n "$state" && "$state" != Z && "$state" != X ]]; then alive+=" $pid"; fi
done
check "no node or watcher process is left (alive:${alive:- none})" '[[ -z "$alive" ]]'
left=""
for f in /proc/[0-9]*/cmdline; do
  args="$(tr '\0' ' ' 2>/dev/null <"$f")" || continue
  if [[ "$args" == *"$DIR"* ]]; then left+=" ${f#/proc/}"; fi
done
check "no process names $DIR (found:${left:- none})" '[[ -z "$left" ]]'
check "the folder is gone" '[[ ! -e "$DIR" ]]'
check "stopping again succeeds" 'bash "$KAFKA" stop --dir "$DIR"'

# --- refusals -------------------------------------------------------------------
touch "$OTHER/keep"
if err="$(bash "$KAFKA" start --dir "$OTHER" 2>&1)"; then
  fail "start in a non-empty folder that is not ours succeeded"
  bash "$KAFKA" stop --dir "$OTHER" || true
else
  check "start in a non-empty foreign folder says why: $err" '[[ "$err" == *"not empty"* ]]'
fi
check "stop refuses to remove a foreign folder" '! bash "$KAFKA" stop --dir "$OTHER" 2>/dev/null'
check "and the folder is still there" '[[ -e "$OTHER/keep" ]]'

finish
