# Shared helpers for the bash scripts in scripts/. Source it; it defines
# functions and NLPFLOW_ROOT, and runs nothing else.

# The repository root, from this file's own location, so that every script
# works from any current directory.
NLPFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Progress and errors go to stderr: stdout is kept for the one value a script
# returns (scripts/kafka start prints the bootstrap address there).
log() { printf '[%s] %s\n' "${NLPFLOW_SCRIPT:-nlpflow}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Seconds since the epoch with a fraction, for timings and deadlines.
now() { date +%s.%N; }
# elapsed START: seconds since START (from now()) with one decimal.
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# report_errors: under set -e, say which command failed instead of exiting
# silently. For scripts whose functions do not return non-zero on purpose.
report_errors() {
  set -E
  trap 'log "failed (exit $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND"' ERR
}

# build_nlpflow [TARGET...]: configures (Ninja, Release) and builds the given
# targets, or everything, in ${NLPFLOW_BUILD_DIR:-build}. Two jobs: the
# machines have 2 cores, and a LibTorch translation unit takes over 1 GiB.
build_nlpflow() {
  local build="${NLPFLOW_BUILD_DIR:-build}" target_args=() t
  for t in "$@"; do target_args+=(--target "$t"); done
  # CMake refuses to switch generators in place: say so plainly.
  if [[ -f "$build/CMakeCache.txt" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$build/CMakeCache.txt"; then
    die "$build/ was configured with another generator than Ninja: remove it, or set NLPFLOW_BUILD_DIR"
  fi
  # ccache keys on paths relative to the repository, so that a clone in
  # another folder (CI's) reuses what a developer's build compiled.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$NLPFLOW_ROOT}"
  log "configuring $build/"
  cmake -S "$NLPFLOW_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  log "building ${*:-everything} in $build/"
  cmake --build "$build" -j2 "${target_args[@]}"
}
