#!/usr/bin/env bash
# Installs the system tools the test suite uses: clang-19 and libbpf headers to build the
# example programs, llvm-objdump to compare disassembly, bpftool for the kernel comparison,
# tcpdump for classic BPF filters and captures, tmux to drive the terminal UI.
set -euo pipefail
need=()
command -v clang-19 >/dev/null || need+=(clang-19)
command -v llvm-objdump-19 >/dev/null || need+=(llvm-19)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || need+=(tcpdump)
command -v tmux >/dev/null || need+=(tmux)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import msgpack' 2>/dev/null || need+=(python3-msgpack)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" libc6-dev-i386 >/dev/null || \
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
