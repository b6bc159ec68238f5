// Damaged traces: torn at every byte, a byte changed at every offset, random files, random
// mutations, lengths that claim gigabytes, and recorders killed while writing. The reader must
// return the complete frames unchanged or throw one of its documented errors, quickly.
import { afterAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceReader, TraceWriter, TraceError, TraceCorruptError, TraceTruncatedError, crc32, type PlainMap } from '../index.js';
import { encodeFrame } from './encode.js';
import { packPlainMap } from './plain.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-damage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mulberry32: a small seeded PRNG, so every failure reproduces. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed * 101) & 0xff);

interface Sample {
  file: Uint8Array;
  frames: { kind: string; header: PlainMap; payload: Uint8Array; offset: number; end: number }[];
}

/** A closed trace with a few frames of each kind, and where each frame lies. */
function sample(payloadSizes = [0, 5, 40, 300, 17, 1]): Sample {
  const path = join(dir, `sample-${payloadSizes.join('-')}.rwt`);
  const w = TraceWriter.create(path, { meta: { program: 'test', insns: bytes(16, 0) }, overwrite: true, created: new Date(0) });
  const frames: Sample['frames'] = [];
  const add = (kind: string, header: PlainMap, payload: Uint8Array) => {
    const offset = w.bytesWritten;
    w.append(kind, header, payload);
    frames.push({ kind, header, payload, offset, end: w.bytesWritten });
  };
  payloadSizes.forEach((n, i) => add(i % 3 === 0 ? 'keyframe' : 'chunk', { first: i * 100, last: i * 100 + 99 }, bytes(n, i)));
  w.close({ steps: payloadSizes.length * 100 });
  return { file: new Uint8Array(readFileSync(path)), frames };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/**
 * Opens `data` and reads every frame. Returns the reader when that works, or the error when
 * it is one of the documented ones; anything else (a crash) fails the test.
 */
function attempt(data: Uint8Array, ignoreIndex = false): { reader?: TraceReader; payloads?: Uint8Array[]; error?: TraceError } {
  try {
    const reader = TraceReader.fromBytes(data, 'trace.rwt', { ignoreIndex });
    const payloads = reader.frames.map((f) => reader.readPayload(f.number));
    reader.verify();
    return { reader, payloads };
  } catch (e) {
    if (e instanceof TraceError) {
      expect(e.message).toMatch(/^trace\.rwt: /);
      expect(e.message).not.toContain('\n');
      return { error: e };
    }
    throw e;
  }
}

/** What a successful read must be: frames 1..n of the sample, unchanged. */
function expectOriginalFrames(s: Sample, reader: TraceReader, payloads: Uint8Array[]) {
  const listed = reader.frames.filter((f) => f.kind !== 'header' && f.kind !== 'end' && f.kind !== 'index');
  listed.forEach((f) => {
    const original = s.frames[f.number - 1];
    expect(f.kind).toBe(original.kind);
    expect(f.header).toEqual(original.header);
    expect(f.offset).toBe(original.offset);
    expect(sameBytes(payloads[f.number], original.payload)).toBe(true);
  });
  expect(reader.header.meta).toEqual({ program: 'test', insns: bytes(16, 0) });
}

describe('a trace cut at every byte', () => {
  const s = sample();
  const headerEnd = s.frames[0].offset;

  test.each([false, true])('keeps every complete frame and says it is truncated (ignoreIndex %s)', (ignoreIndex) => {
    for (let len = 0; len <= s.file.length; len++) {
      const { reader, payloads, error } = attempt(s.file.subarray(0, len), ignoreIndex);
      if (len < headerEnd) {
        expect(error, `cut at ${len}`).toBeInstanceOf(TraceTruncatedError);
        continue;
      }
      expect(error, `cut at ${len}: ${error?.message}`).toBeUndefined();
      const complete = s.frames.filter((f) => f.end <= len).length;
      expect(reader!.truncated, `cut at ${len}`).toBe(len < s.file.length);
      // The header, the complete sample frames, then possibly "end" and "index".
      expect(reader!.frames.length).toBeGreaterThanOrEqual(1 + complete);
      expect(reader!.frames.slice(1, 1 + complete).map((f) => f.number)).toEqual(s.frames.slice(0, complete).map((_, i) => i + 1));
      const last = reader!.frames[reader!.frames.length - 1];
      expect(reader!.dataEnd).toBe(len === s.file.length ? len : last.offset + last.length);
      expect(len - reader!.dataEnd).toBeLessThan(len === s.file.length ? 1 : 400);
      if (complete < s.frames.length) expect(reader!.frames.length).toBe(1 + complete);
      expectOriginalFrames(s, reader!, payloads!);
    }
  });

  test('the same through files on disk', () => {
    const path = join(dir, 'cut.rwt');
    for (let len = headerEnd; len <= s.file.length; len += 7) {
      writeFileSync(path, s.file.subarray(0, len));
      const r = TraceReader.open(path);
      expect(r.truncated).toBe(len < s.file.length);
      r.frames.forEach((f) => r.readPayload(f.number));
      r.close();
    }
  });
});

describe('a byte changed at every offset', () => {
  const s = sample();
  const original = TraceReader.fromBytes(s.file);
  const trailerAt = s.file.length - 33;
  const frameAt = (offset: number) => original.frames.find((f) => offset >= f.offset && offset < f.offset + f.length);

  test.each([
    [0x01, false],
    [0x80, false],
    [0xff, false],
    [0x01, true],
    [0xff, true],
  ])('is detected and blamed on the frame that holds it (xor %i, ignoreIndex %s)', (mask, ignoreIndex) => {
    const outcomes = new Map<string, number>();
    for (let at = 0; at < s.file.length; at++) {
      const damaged = s.file.slice();
      damaged[at] ^= mask;
      const { reader, error } = attempt(damaged, ignoreIndex);
      // No byte is unprotected: every change is an error, never a different reading.
      expect(error, `byte ${at} ^ ${mask}: read without an error (truncated: ${reader?.truncated})`).toBeDefined();
      const name = error!.constructor.name;
      outcomes.set(name, (outcomes.get(name) ?? 0) + 1);
      const where = `byte ${at} ^ ${mask}: ${error!.message}`;
      // A damaged magic makes it no Rewind trace at all.
      if (at < 21 && name === 'TraceFormatError') continue;
      expect(error, where).toBeInstanceOf(TraceCorruptError);
      const e = error as TraceCorruptError;
      if (at >= trailerAt) {
        expect([e.kind, e.offset], where).toEqual(['trailer', trailerAt]);
        expect(e.message).toMatch(/^trace\.rwt: trailer at byte \d+: /);
        continue;
      }
      const f = frameAt(at)!;
      // An index frame too damaged to parse has no number yet: it is "the index frame at byte N".
      const number = f.kind === 'index' && e.frame === undefined ? undefined : f.number;
      // A scan has only the damaged frame's own bytes, which it does not trust for a kind.
      expect([e.frame, e.kind, e.offset], where).toEqual([number, ignoreIndex && f.number > 0 ? undefined : f.kind, f.offset]);
      if (ignoreIndex && f.number > 0) expect(e.message, where).toContain(`: frame ${f.number} at byte ${f.offset}: `);
      else if (f.kind === 'chunk' || f.kind === 'keyframe') {
        const i = f.number - 1;
        expect(e.message, where).toContain(`: frame ${f.number} (${f.kind}, first=${i * 100}, last=${i * 100 + 99}) at byte ${f.offset}: `);
      }
    }
    console.log(`xor ${mask}, ignoreIndex ${ignoreIndex}:`, Object.fromEntries(outcomes));
  });
});

describe('a byte changed in a trace whose recorder was killed', () => {
  const full = sample([3, 40, 300, 0, 17]);
  // Cut inside the "end" frame: no index, no trailer; the five frames are complete.
  const s = { ...full, file: full.file.subarray(0, full.frames[4].end + 5) };

  test('is an error naming the frame, or reads as torn before that frame', () => {
    for (let at = 21; at < s.file.length; at++) {
      for (const mask of [0x01, 0xff]) {
        const damaged = s.file.slice();
        damaged[at] ^= mask;
        const { reader, payloads, error } = attempt(damaged);
        // The frame holding the byte: 0 for the header, 6 for the torn "end" frame.
        const holder = at >= s.frames[4].end ? 6 : s.frames.findIndex((f) => at >= f.offset && at < f.end) + 1;
        if (error) {
          // In the header, a length made to run past the end looks like a header cut short.
          if (holder === 0 && error instanceof TraceTruncatedError) continue;
          expect(error, error.message).toBeInstanceOf(TraceCorruptError);
          expect((error as TraceCorruptError).frame, error.message).toBe(holder);
          continue;
        }
        // Readable only when the damage made its frame look torn (a length now runs past the
        // end) or it fell in the torn tail: the frames listed are all original.
        expect(reader!.truncated).toBe(true);
        if (holder > 0) expect(reader!.frames.length, `byte ${at}`).toBeLessThanOrEqual(holder);
        expectOriginalFrames(s, reader!, payloads!);
      }
    }
  });
});

describe('fuzzing the reader', () => {
  const s = sample([0, 9, 300, 70_000, 2, 40, 1, 600]);
  const originals = TraceReader.fromBytes(s.file);
  const finalMeta = originals.finalMeta;

  /** Runs one case under a time bound; a reading that works must be the original's. */
  function check(data: Uint8Array, ignoreIndex: boolean, label: string, compare: boolean) {
    const started = performance.now();
    const { reader, payloads } = attempt(data, ignoreIndex);
    const took = performance.now() - started;
    expect(took, `${label} took ${took.toFixed(0)} ms`).toBeLessThan(1000);
    if (reader && compare) {
      expectOriginalFrames(s, reader, payloads!);
      if (!reader.truncated) expect(reader.frames.length).toBe(originals.frames.length);
      const end = reader.frames.find((f) => f.kind === 'end');
      if (end) expect(end.header).toEqual(finalMeta);
    }
    return took;
  }

  test('random bytes: never a crash or a hang', () => {
    const rand = prng(7);
    const header = s.file.subarray(0, s.frames[0].offset);
    // Bytes that frames are made of, so that random data gets past the first checks.
    const alphabet = [0x85, 0xa1, 0x6b, 0x69, 0x68, 0x64, 0x63, 0xc4, 0xc5, 0xc6, 0xce, 0xcf, 0xde, 0xdf, 0xdc, 0xdd, 0xd9, 0xdb, 0x80, 0x90, 0x00, 0xff, 0x83, 0xa5, 0xa7];
    let slowest = 0;
    for (let i = 0; i < 3000; i++) {
      const n = Math.floor(rand() * 2048);
      const body = Uint8Array.from({ length: n }, () => (rand() < 0.5 ? alphabet[Math.floor(rand() * alphabet.length)] : Math.floor(rand() * 256)));
      // Random from the start; after a valid header frame; after the header and a first frame.
      const prefix = [new Uint8Array(0), header, s.file.subarray(0, s.frames[0].end)][i % 3];
      const data = concat(prefix, body);
      slowest = Math.max(slowest, check(data, i % 2 === 1, `garbage case ${i}`, false));
    }
    console.log(`random bytes: slowest case ${slowest.toFixed(1)} ms`);
  });

  test('random mutations of a valid trace: the original frames or a clear error', () => {
    const rand = prng(11);
    const int = (n: number) => Math.floor(rand() * n);
    const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
    const counts = { ok: 0, error: 0 };
    let slowest = 0;
    for (let i = 0; i < 4000; i++) {
      let data: Uint8Array = s.file.slice();
      const ops = 1 + int(4);
      for (let k = 0; k < ops && data.length > 0; k++) {
        const at = int(data.length);
        switch (int(8)) {
          case 0: // flip one bit
            data[at] ^= 1 << int(8);
            break;
          case 1: // overwrite one byte
            data[at] = int(256);
            break;
          case 2: // insert random bytes
            data = concat(data.subarray(0, at), randomBytes(1 + int(16)), data.subarray(at));
            break;
          case 3: // delete a range
            data = concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + 1 + int(64))));
            break;
          case 4: // cut the file
            data = data.subarray(0, at);
            break;
          case 5: {
            // copy a range over another place
            const from = int(data.length);
            data.copyWithin(at, from, Math.min(data.length, from + 1 + int(200)));
            break;
          }
          case 6: {
            // duplicate a range (a frame written twice, say)
            const from = int(data.length);
            data = concat(data.subarray(0, at), data.subarray(from, Math.min(data.length, from + 1 + int(400))), data.subarray(at));
            break;
          }
          case 7: // a huge length or count
            if (at + 4 <= data.length) new DataView(data.buffer, data.byteOffset).setUint32(at, rand() < 0.5 ? 0xffff_ffff : int(2 ** 32));
            break;
        }
      }
      const { error } = attempt(data);
      counts[error ? 'error' : 'ok']++;
      slowest = Math.max(slowest, check(data, false, `mutation case ${i}`, true), check(data, true, `mutation case ${i} (scan)`, true));
    }
    console.log(`mutations: ${counts.ok} read (cut or untouched), ${counts.error} clear errors; slowest case ${slowest.toFixed(1)} ms`);
    expect(counts.error).toBeGreaterThan(2000);
  });
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('lengths and counts that claim more than the file holds', () => {
  const head = () => {
    const s = sample([4]);
    return s.file.subarray(0, s.frames[0].offset);
  };
  const str = (t: string) => [0xa0 | t.length, ...Buffer.from(t)];
  /** A version-1 frame envelope up to its header map, then `rest`. */
  const frameStart = (rest: number[]) => Uint8Array.from([0x85, ...str('k'), ...str('chunk'), ...str('i'), 0x01, ...str('h'), ...rest]);

  const cases: [string, Uint8Array][] = [
    ['a payload of 4 GiB - 1', frameStart([0x80, ...str('d'), 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])],
    ['a header map of 2^32 - 1 entries', frameStart([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 1])],
    ['a header array of 2^32 - 1 items', frameStart([0x81, ...str('a'), 0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0])],
    ['a header string of 4 GiB - 1', frameStart([0x81, ...str('a'), 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])],
    ['a kind string of 4 GiB - 1', Uint8Array.from([0x85, ...str('k'), 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])],
    ['a frame number of 2^64 - 1', Uint8Array.from([0x85, ...str('k'), ...str('chunk'), ...str('i'), 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a header nested 100,000 deep', frameStart([0x81, ...str('a'), ...new Array(100_000).fill(0x91), 0x80])],
  ];

  test.each(cases)('%s: a torn frame or a clear error, at once and without allocating it', (_, frame) => {
    const data = concat(head(), frame);
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    const { reader, error } = attempt(data);
    expect(performance.now() - started).toBeLessThan(200);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
    if (reader) {
      expect(reader.truncated).toBe(true);
      expect(reader.frames.length).toBe(1);
    } else {
      expect(error, error?.message).toBeInstanceOf(TraceCorruptError);
      expect(error!.message).toMatch(/^trace\.rwt: frame 1 at byte \d+: /);
    }
  });

  test('a nesting bomb is refused by depth, not by a stack overflow', () => {
    const { error } = attempt(concat(head(), frameStart([0x81, ...str('a'), ...new Array(100_000).fill(0x91), 0x80])));
    expect(error?.message).toMatch(/the frame header nests more than 32 deep/);
  });

  /** A closed trace whose trailer (with a good checksum) points at `indexAt`, after `body`. */
  function closedWith(body: Uint8Array, indexAt: number) {
    const trailer = Uint8Array.from([0x83, ...str('k'), ...str('trailer'), ...str('index'), 0xcf, 0, 0, 0, 0, 0, 0, 0, 0, ...str('c'), 0xce, 0, 0, 0, 0]);
    const dv = new DataView(trailer.buffer);
    dv.setUint32(18, Math.floor(indexAt / 2 ** 32));
    dv.setUint32(22, indexAt >>> 0);
    dv.setUint32(29, crc32(trailer.subarray(0, 26)));
    return concat(body, trailer);
  }

  test('a trailer pointing far past the file', () => {
    const s = sample([4]);
    const body = s.file.subarray(0, s.file.length - 33);
    const { error } = attempt(closedWith(body, 2 ** 53 - 1));
    expect(error?.message).toMatch(/^trace\.rwt: trailer at byte \d+: the index offset 9007199254740991 is outside the frames/);
  });

  test('an index (with a good checksum) that claims 2^32 - 1 entries', () => {
    const s = sample([4]);
    const body = s.file.subarray(0, s.frames[0].end);
    const index = encodeFrame('index', 2, packPlainMap({ frames: 2 }, 'h'), Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x94]));
    const { error } = attempt(closedWith(concat(body, index), body.length));
    expect(error?.message).toMatch(/^trace\.rwt: frame 2 \(index, frames=2\) at byte \d+: the index lists 4294967295 frames, but the index frame is frame 2/);
  });

  test('a payload length patched to 4 GiB - 1 in a closed trace', () => {
    const s = sample([70_000, 3]);
    const damaged = s.file.slice();
    const f = s.frames[0];
    // The bin 32 header sits just before the payload: c6 + 4 length bytes.
    const lengthAt = f.end - 7 - 70_000 - 4;
    expect(damaged[lengthAt - 1]).toBe(0xc6);
    damaged.set([0xff, 0xff, 0xff, 0xff], lengthAt);
    const before = process.memoryUsage().arrayBuffers;
    const { error } = attempt(damaged);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
    expect(error?.message).toBe(`trace.rwt: frame 1 (keyframe, first=0, last=99) at byte ${f.offset}: the frame runs past its ${f.end - f.offset} bytes`);
  });
});

describe('big traces', () => {
  test('opening one reads its index and a window, not the whole file', () => {
    const path = join(dir, 'big.rwt');
    const w = TraceWriter.create(path);
    const payload = new Uint8Array(1 << 20);
    for (let i = 0; i < 96; i++) {
      payload.fill(i);
      w.append(i % 8 === 0 ? 'keyframe' : 'chunk', { first: i << 16 }, payload);
    }
    const unclosed = join(dir, 'big-unclosed.rwt');
    writeFileSync(unclosed, readFileSync(path));
    w.close();
    for (const [file, options, via] of [
      [path, {}, 'index'],
      [path, { ignoreIndex: true }, 'scan'],
      [unclosed, {}, 'scan'],
    ] as const) {
      const before = process.memoryUsage().arrayBuffers;
      const started = performance.now();
      const r = TraceReader.open(file, options);
      const took = performance.now() - started;
      const grew = process.memoryUsage().arrayBuffers - before;
      console.log(`${via}${file === unclosed ? ' (unclosed)' : ''}: opened 96 MiB in ${took.toFixed(0)} ms, array buffers grew ${(grew / 2 ** 20).toFixed(1)} MiB`);
      expect(r.via).toBe(via);
      expect(r.frames.length).toBe(file === unclosed ? 97 : 99);
      expect(grew).toBeLessThan(8 << 20);
      expect(r.lastAtOrBefore('keyframe', 'first', 20 << 16)?.number).toBe(17);
      expect(r.readPayload(50).every((b) => b === 49)).toBe(true);
      r.close();
    }
  });
});
