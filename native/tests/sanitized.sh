# Sourced by the scripts that run native tests under AddressSanitizer and UndefinedBehaviorSanitizer
# (run-sanitizers.sh, run-cuda-emulated.sh); any sanitizer report fails the run.
# sanitized_build SOURCE_DIR BUILD_DIR "TARGET..." [CMAKE_ARG...]: configures and builds the targets.
sanitized_build() {
  local src=$1 build=$2 targets=$3
  shift 3
  # (-Wno-maybe-uninitialized: GCC 12 warns inside its own AVX-512 intrinsics headers at -O1.
  # float-cast-overflow: a float outside an integer's range converted to it; GCC's `undefined` omits it.)
  local flags="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 -Wno-maybe-uninitialized"
  local generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRLHF_TESTS=ON "$@" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
  # shellcheck disable=SC2086  # a list of targets
  cmake --build "$build" --target $targets --parallel "$(nproc 2>/dev/null || echo 2)"
}
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
