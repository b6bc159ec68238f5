// Reads classic BPF programs in the text forms tools print them in:
//   tcpdump -ddd   first line the instruction count, then "code jt jf k" per line, decimal;
//   tcpdump -dd    C initialisers, "{ 0x28, 0, 0, 0x0000000c },";
//   bpf_asm / tc / xt_bpf   the -ddd numbers on one line, separated by commas ("4,40 0 0 12,...").

import { CbpfError, type CbpfInsn } from './insn.js';

/** Parses `tcpdump -ddd` or `tcpdump -dd` output (or the comma-separated -ddd form); `file` names it in errors. */
export function parseCbpfDump(text: string, file = '<cbpf>'): CbpfInsn[] {
  if (text.includes('{')) return parseC(text, file);
  const lines = text.split('\n');
  // The one-line form: split the commas into lines, keeping line 1 for every error.
  const records: { line: number; text: string }[] = [];
  lines.forEach((l, i) => {
    for (const part of l.split(',')) {
      const t = part.replace(/#.*$/, '').trim();
      if (t !== '') records.push({ line: i + 1, text: t });
    }
  });
  if (records.length === 0) throw new CbpfError(`${file}: empty program`);
  const head = records[0]!;
  if (!/^\d+$/.test(head.text)) {
    throw new CbpfError(`${file}:${head.line}: expected the instruction count (tcpdump -ddd's first line), got '${head.text}'`);
  }
  const count = Number(head.text);
  const body = records.slice(1);
  if (body.length !== count) {
    throw new CbpfError(`${file}:${head.line}: the count says ${count} instructions, ${body.length} follow`);
  }
  return body.map(({ line, text: t }) => {
    const parts = t.split(/\s+/);
    if (parts.length !== 4 || !parts.every((p) => /^\d+$/.test(p))) {
      throw new CbpfError(`${file}:${line}: expected four decimal numbers 'code jt jf k', got '${t}'`);
    }
    return checkFields(parts.map(Number) as [number, number, number, number], file, line);
  });
}

function parseC(text: string, file: string): CbpfInsn[] {
  const insns: CbpfInsn[] = [];
  const re = /\{([^}]*)\}/g;
  text.split('\n').forEach((l, i) => {
    const line = i + 1;
    const rest = l.replace(re, '').replace(/\/\*.*?\*\/|\/\/.*$/g, '').trim();
    if (!/^[,;\s]*$/.test(rest)) {
      throw new CbpfError(`${file}:${line}: expected '{ code, jt, jf, k },' got '${l.trim()}'`);
    }
    for (const m of l.matchAll(re)) {
      const parts = m[1]!.split(',').map((p) => p.trim());
      if (parts.length !== 4 || !parts.every((p) => /^(0x[0-9a-fA-F]+|\d+)$/.test(p))) {
        throw new CbpfError(`${file}:${line}: expected four numbers '{ code, jt, jf, k }', got '{${m[1]}}'`);
      }
      insns.push(checkFields(parts.map(Number) as [number, number, number, number], file, line));
    }
  });
  if (insns.length === 0) throw new CbpfError(`${file}: empty program`);
  return insns;
}

function checkFields([code, jt, jf, k]: [number, number, number, number], file: string, line: number): CbpfInsn {
  if (code > 0xffff) throw new CbpfError(`${file}:${line}: code ${code} does not fit 16 bits`);
  if (jt > 0xff || jf > 0xff) throw new CbpfError(`${file}:${line}: jump offsets ${jt}/${jf} do not fit 8 bits`);
  if (k > 0xffffffff) throw new CbpfError(`${file}:${line}: k ${k} does not fit 32 bits`);
  return { code, jt, jf, k };
}
