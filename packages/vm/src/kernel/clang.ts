// Assembling LLVM BPF assembly (the llvm-objdump syntax: `r0 = 1`, `w1 += w2`, `call sub`) into
// an object with clang, for programs written in that syntax rather than the `.data` one.

import { writeFileSync } from 'node:fs';
import { findTool, KernelError, runTool } from './exec.js';

/** The clang that can target BPF: clang-19 as Debian installs it, or plain clang. */
export function findClang(): string | undefined {
  return findTool('clang-19') ?? findTool('clang');
}

/**
 * Assembles `source` (LLVM BPF assembly) into the object `outPath`. `cpu` selects the ISA version
 * the assembler accepts (v4 for sdiv, movsx, bswap, gotol, ldsx).
 */
export function assembleLlvm(source: string, outPath: string, cpu: 'v1' | 'v2' | 'v3' | 'v4' = 'v4'): void {
  const clang = findClang();
  if (!clang) throw new KernelError('clang is not installed (apt install clang-19)');
  const src = outPath.replace(/\.o$/, '') + '.s';
  writeFileSync(src, source);
  runTool(clang, ['-target', 'bpf', `-mcpu=${cpu}`, '-c', src, '-o', outPath], `clang -target bpf -c ${src}`);
}
