import { RewindError } from '../errors.js';
// The `.data` test-file format of uBPF and bpf_conformance: sections introduced by `-- <name>`
// lines (`asm`, `raw`, `mem`, `result`, `error`, `error pattern`, ...), `#` comments, and
// `-- <name> @ <file>` to take a section from a file next to the `.data` file. Parsing follows
// uBPF's test_framework/testdata.py, which the files were written for.

import { decode, type Bytecode } from '../isa.js';
import { assemble } from './assemble.js';

/** A malformed `.data` file, reported as `<file>:<line>: <what>`. */
export class DataFileError extends RewindError {
  override readonly name = 'DataFileError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly what: string,
  ) {
    super(`${file}:${line}: ${what}`);
  }
}

export interface DataTest {
  file: string;
  /** The `-- description` section, or else the `#` comment lines before the first section. */
  description?: string;
  /** The assembly source (from `-- asm` or the file `-- asm @ file` names). */
  asm?: string;
  /** The program: from `-- raw` when present (uBPF and bpf_conformance both prefer it), else assembled from `asm`. */
  code?: Bytecode;
  /** Input memory, from hex bytes (`-- mem` or `-- mem @ file.hex`). */
  mem?: Uint8Array;
  /** The expected r0, as an unsigned 64-bit value. */
  result?: bigint;
  /** The exact expected error text. */
  error?: string;
  /** A regular expression the error must match. */
  errorPattern?: string;
  /** Every section's text by name (without any `@ file` part), after resolving `@` references. */
  sections: Record<string, string>;
}

export interface ParseDataFileOptions {
  /** The file's name, for messages and for resolving `@` references. */
  file: string;
  /** Reads a file named by `-- <section> @ <rel>`; rel is as written, relative to the `.data` file's directory. */
  readFile?: (rel: string) => string;
}

interface Section {
  name: string;
  /** 1-based line of the `-- name` header. */
  header: number;
  lines: string[];
  /** The included file, for `-- name @ file`. */
  include?: string;
}

/** Sections whose text keeps `#` (C sources use it for preprocessor lines). */
const VERBATIM = new Set(['c']);

export function parseDataFile(text: string, opts: ParseDataFileOptions): DataTest {
  const { file } = opts;
  const lines = text.split(/\r?\n/);
  const sections: Section[] = [];
  const comments: string[] = [];
  const fail = (line: number, what: string): never => {
    throw new DataFileError(file, line, what);
  };

  lines.forEach((line, i) => {
    const header = /^--(.*)$/.exec(line);
    if (header) {
      const spec = stripComment(header[1]!).trim();
      const at = spec.indexOf('@');
      const name = (at < 0 ? spec : spec.slice(0, at)).trim();
      const prev = sections.find((s) => s.name === name);
      if (prev) fail(i + 1, `section '${name}' already defined at line ${prev.header}`);
      sections.push({ name, header: i + 1, lines: [], ...(at < 0 ? {} : { include: spec.slice(at + 1).trim() }) });
      return;
    }
    const current = sections[sections.length - 1];
    if (current) {
      current.lines.push(line);
      return;
    }
    const comment = /^\s*#\s?(.*)$/.exec(line);
    if (comment) comments.push(comment[1]!);
    else if (line.trim() !== '') fail(i + 1, `text before the first '-- <section>' line: '${line.trim()}'`);
  });

  const out: DataTest = { file, sections: {} };
  // Text of a section, and the file/line its first line comes from (for assembler messages).
  const bodies = new Map<string, { text: string; file: string; firstLine: number }>();
  for (const s of sections) {
    if (s.include !== undefined) {
      if (s.lines.some((l) => stripComment(l).trim() !== '')) {
        fail(s.header + 1, `section '${s.name}' takes its text from ${s.include} and must be empty`);
      }
      const readFile = opts.readFile ?? fail(s.header, `section '${s.name}' refers to ${s.include}, but no readFile was given`);
      let included: string;
      try {
        included = readFile(s.include);
      } catch (e) {
        fail(s.header, `cannot read ${s.include}: ${e instanceof Error ? e.message : String(e)}`);
      }
      bodies.set(s.name, { text: included!, file: siblingPath(file, s.include), firstLine: 1 });
    } else {
      const body = [...s.lines];
      while (body.length > 0 && body[body.length - 1]!.trim() === '') body.pop();
      bodies.set(s.name, { text: body.join('\n'), file, firstLine: s.header + 1 });
    }
    out.sections[s.name] = bodies.get(s.name)!.text;
  }

  /** The section's lines without comments and blank lines, each with its line number. */
  const meaningful = (name: string): { text: string; line: number }[] => {
    const b = bodies.get(name)!;
    return b.text
      .split(/\r?\n/)
      .map((l, i) => ({ text: (VERBATIM.has(name) ? l : stripComment(l)).trim(), line: b.firstLine + i }))
      .filter((l) => l.text !== '');
  };
  const where = (name: string) => bodies.get(name)!.file;

  const description = bodies.get('description');
  if (description) out.description = meaningful('description').map((l) => l.text).join('\n');
  else if (comments.length > 0) out.description = comments.join('\n').trim();

  if (bodies.has('asm')) out.asm = bodies.get('asm')!.text;

  if (bodies.has('raw')) {
    const raw = meaningful('raw');
    const bytes = new Uint8Array(raw.length * 8);
    const dv = new DataView(bytes.buffer);
    raw.forEach(({ text: t, line }, i) => {
      const v = parseInteger(t);
      if (v === undefined || v < 0n || v > 0xffff_ffff_ffff_ffffn) {
        throw new DataFileError(where('raw'), line, `raw instruction '${t}' is not an unsigned 64-bit number`);
      }
      // The number is the instruction read as a little-endian u64: opcode in the low byte, imm on top.
      dv.setBigUint64(i * 8, v, true);
    });
    out.code = decode(bytes);
  } else if (out.asm !== undefined) {
    const b = bodies.get('asm')!;
    out.code = assemble(b.text, { file: b.file, firstLine: b.firstLine });
  }

  if (bodies.has('mem')) {
    const hexDigits: string[] = [];
    for (const { text: t } of meaningful('mem')) {
      // A hexdump's offset column ends with a colon (`0x0010:  0040 a8de ...`); the bytes follow it.
      const data = t.includes(':') ? t.slice(t.lastIndexOf(':') + 1) : t;
      for (const m of data.matchAll(/[0-9a-f]{2}/gi)) hexDigits.push(m[0]);
    }
    out.mem = Uint8Array.from(hexDigits, (h) => parseInt(h, 16));
  }

  if (bodies.has('result')) {
    const r = meaningful('result');
    if (r.length !== 1) fail(sections.find((s) => s.name === 'result')!.header, `section 'result' must hold one number, has ${r.length} lines`);
    const v = parseInteger(r[0]!.text);
    if (v === undefined) throw new DataFileError(where('result'), r[0]!.line, `result '${r[0]!.text}' is not a number`);
    out.result = BigInt.asUintN(64, v);
  }

  if (bodies.has('error')) out.error = meaningful('error').map((l) => l.text).join('\n');
  if (bodies.has('error pattern')) out.errorPattern = meaningful('error pattern').map((l) => l.text).join('\n');
  return out;
}

function stripComment(line: string): string {
  const hash = line.indexOf('#');
  return hash < 0 ? line : line.slice(0, hash);
}

/** Python's int(x, 0) for the forms these files use: decimal, 0x hex, optional sign. */
function parseInteger(t: string): bigint | undefined {
  const m = /^([+-]?)(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.exec(t);
  if (!m) return undefined;
  const v = BigInt(m[2]!);
  return m[1] === '-' ? -v : v;
}

/** `dir/match.data` + `tcp-sack.asm` → `dir/tcp-sack.asm`, for messages. */
function siblingPath(file: string, rel: string): string {
  const slash = file.lastIndexOf('/');
  return slash < 0 || rel.startsWith('/') ? rel : file.slice(0, slash + 1) + rel;
}
