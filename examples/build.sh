#!/usr/bin/env bash
# Rebuilds every example's object, examples/<name>/<name>.o from examples/<name>/<name>.c.
# Needs clang-19 and libbpf's headers (libbpf-dev); include/ stands in for the asm/ headers
# that -target bpf lacks. The output is reproducible: the compiler is run from this folder on
# relative paths and told to record '.' as the compilation directory, so no absolute path of
# the checkout ends up in the debug info, and a rebuild gives the committed bytes again.
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
for dir in */; do
  name=${dir%/}
  [ -f "$name/$name.c" ] || continue
  "$CLANG" -O2 -g -Wall -Werror -target bpf -Iinclude -fdebug-compilation-dir=. \
    -c "$name/$name.c" -o "$name/$name.o"
  echo "built $name/$name.o"
done
