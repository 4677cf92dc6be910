#!/usr/bin/env bash
# The library as an embedder gets it: `cmake --install` into a fresh prefix, which is then moved (the
# package must be relocatable), and tests/embed_test.c built against the installed header and library
# alone, once through find_package(rlhf) (tests/consumer) and once through pkg-config, and run.
# A find_package request for a release the library is not compatible with must fail.
# The library holds the CUDA kernels when nvcc is found (as the addon does); the installed tree must
# then have kernels_cuda.h and the program calls the CUDA half too (no GPU needed).
# Usage: native/tests/run-install.sh [build-dir]   (default: native/build/install; no Node)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/install}"
jobs="$(nproc 2>/dev/null || echo 2)"
header_number() { sed -n "s/^#define RLHF_$1 \([0-9]*\)$/\1/p" "$src/include/rlhf/kernels.h"; }
major=$(header_number VERSION_MAJOR) minor=$(header_number VERSION_MINOR) abi=$(header_number ABI_VERSION)

cmake -S "$src" -B "$build/lib" -DCMAKE_BUILD_TYPE=Release -DRLHF_CUDA=ON >/dev/null  # ON: with nvcc, if found
cmake --build "$build/lib" --target rlhf --parallel "$jobs"
rm -rf "$build/staged" "$build/prefix"
cmake --install "$build/lib" --prefix "$build/staged" >/dev/null
mv "$build/staged" "$build/prefix"
prefix="$build/prefix"
echo "installed:"; (cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
cuda_flag=()
if [ -f "$prefix/include/rlhf/kernels_cuda.h" ]; then
  cuda_flag=(-DRLHF_EMBED_CUDA)
elif command -v nvcc >/dev/null; then
  echo "run-install: nvcc is here but the installed library has no CUDA half (kernels_cuda.h)" >&2
  exit 1
fi

# find_package, asking for this release's MAJOR.MINOR
rm -rf "$build/consumer"
cmake -S "$here/consumer" -B "$build/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DRLHF_WANT="$major.$minor" | grep "rlhf "
cmake --build "$build/consumer" --parallel "$jobs" >/dev/null
"$build/consumer/embed_test"
if command -v readelf >/dev/null && ! readelf -d "$build/consumer/embed_test" | grep -q "NEEDED.*\[librlhf\.so\.$abi\]"; then
  echo "run-install: embed_test does not depend on librlhf.so.$abi (the SONAME)" >&2
  exit 1
fi

# ...and a release it does not provide
rm -rf "$build/consumer-next"
if cmake -S "$here/consumer" -B "$build/consumer-next" -DCMAKE_PREFIX_PATH="$prefix" -DRLHF_WANT="$major.$((minor + 1))" \
    >"$build/consumer-next.log" 2>&1; then
  echo "run-install: find_package(rlhf $major.$((minor + 1))) accepted release $major.$minor" >&2
  exit 1
fi
grep -q "with requested version" "$build/consumer-next.log" || { cat "$build/consumer-next.log" >&2; exit 1; }
echo "find_package(rlhf $major.$((minor + 1))) refused, as it must be"

# pkg-config
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$(dirname "$(find "$prefix" -name rlhf.pc)")"
  libdir="$(pkg-config --variable=libdir rlhf)"
  # shellcheck disable=SC2046 # word splitting of the flags is intended
  cc -std=c99 -Wall -Werror "${cuda_flag[@]}" "$here/embed_test.c" -o "$build/embed_test_pc" $(pkg-config --cflags --libs rlhf) -lm \
    -Wl,-rpath,"$libdir"
  echo "pkg-config: rlhf $(pkg-config --modversion rlhf)"
  "$build/embed_test_pc"
else
  echo "run-install: pkg-config is not installed; the pkg-config build was skipped" >&2
  exit 1
fi
