// `rewind demo`: runs the bundled example and shows what it did.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatInsn, insnStarts, LoadedProgram, Machine, parseDataFile, programFromBytecode, RAW_ENTRY_REGS, runOnMemory } from '@rewind/vm';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../../../examples/', import.meta.url));

export async function demo(): Promise<number> {
  const file = `${EXAMPLES_DIR}asm/tcp-dport.data`;
  const test = parseDataFile(readFileSync(file, 'utf8'), { file });
  const code = test.code!;
  const loaded = new LoadedProgram(programFromBytecode(code, 'tcp_dport'), new Machine(), { entryRegs: RAW_ENTRY_REGS });
  const result = runOnMemory(loaded, test.mem ?? new Uint8Array(0));
  const out: string[] = [];
  out.push(`rewind demo: ${test.description ?? file}`);
  out.push('');
  for (const pc of insnStarts(code)) out.push(`${String(pc).padStart(4)}:  ${formatInsn(code, pc)}`);
  out.push('');
  out.push(`ran on a ${test.mem?.length ?? 0}-byte packet: ${result.steps} instructions, exit at pc ${result.pc}, r0 = 0x${result.r0.toString(16)}`);
  if (result.fault) out.push(result.fault.message);
  for (const w of result.warnings) out.push(w.message);
  process.stdout.write(out.join('\n') + '\n');
  return result.fault ? 1 : 0;
}
