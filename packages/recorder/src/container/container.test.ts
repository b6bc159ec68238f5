import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeMulti } from '@msgpack/msgpack';
import { TraceReader, TraceWriter, TraceError, TraceFormatError, TraceTruncatedError, TraceVersionError, crc32, type PlainMap } from '../index.js';
import { encodeFrame, encodeHeaderFrame } from './encode.js';
import { packPlainMap } from './plain.js';
import { TOOL } from './format.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-container-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;
const fresh = () => join(dir, `t${serial++}.rwt`);

/** Byte-for-byte equality, without the cost of a deep comparison of large arrays. */
function expectBytes(actual: Uint8Array, expected: Uint8Array) {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);

const META: PlainMap = {
  program: { name: 'xdp_pass', insns: bytes(40, 1), sections: ['xdp', 'maps'] },
  limits: { steps: 5_000_000, big: 2 ** 40, negative: -(2 ** 35), huge: 2n ** 63n, small: -7 },
  ratio: 0.25,
  text: 'Größe ✓',
  none: null,
  flags: [true, false],
};

/** A trace with payloads around the bin 8 / bin 16 / bin 32 boundaries and several kinds. */
function writeSample(path: string) {
  const w = TraceWriter.create(path, { meta: META, created: new Date('2026-01-02T03:04:05.678Z') });
  const frames: { kind: string; header: PlainMap; payload: Uint8Array }[] = [];
  const sizes = [0, 1, 255, 256, 65535, 65536, 100_000, 3];
  sizes.forEach((n, i) => {
    const kind = i % 3 === 0 ? 'keyframe' : 'chunk';
    const header = { first: i * 4096, last: i * 4096 + 4095, label: `part ${i}` };
    const payload = bytes(n, i);
    expect(w.append(kind, header, payload)).toBe(i + 1);
    frames.push({ kind, header, payload });
  });
  frames.push({ kind: 'meta', header: { maps: ['counters'] }, payload: bytes(10, 99) });
  w.append('meta', { maps: ['counters'] }, bytes(10, 99));
  expect(w.frameCount).toBe(frames.length + 1);
  w.close({ steps: 32768, exit: { r0: 2 } });
  return frames;
}

describe('round trip', () => {
  const path = fresh();
  const written = writeSample(path);

  test('the reader lists every frame, through the index, and returns the payloads', () => {
    const r = TraceReader.open(path);
    expect(r.truncated).toBe(false);
    expect(r.via).toBe('index');
    expect(r.dataEnd).toBe(readFileSync(path).length);
    expect(r.header).toEqual({ version: 1, tool: TOOL, created: '2026-01-02T03:04:05.678Z', meta: { ...META, limits: { ...(META.limits as PlainMap), huge: 2n ** 63n } } });
    expect(r.frames.map((f) => f.kind)).toEqual(['header', ...written.map((f) => f.kind), 'end', 'index']);
    r.frames.forEach((f, n) => expect(f.number).toBe(n));
    written.forEach((f, i) => {
      expect(r.frames[i + 1].header).toEqual(f.header);
      expectBytes(r.readPayload(i + 1), f.payload);
    });
    expect(r.finalMeta).toEqual({ steps: 32768, exit: { r0: 2 } });
    r.verify();
    r.close();
  });

  test('a scan that ignores the index finds the same frames', () => {
    const a = TraceReader.open(path);
    const b = TraceReader.open(path, { ignoreIndex: true });
    expect(b.via).toBe('scan');
    expect(b.truncated).toBe(false);
    expect(b.frames).toEqual(a.frames);
    a.close();
    b.close();
  });

  test('frames are contiguous and cover the file up to the 33-byte trailer', () => {
    const r = TraceReader.open(path);
    let at = 0;
    for (const f of r.frames) {
      expect(f.offset).toBe(at);
      at += f.length;
    }
    expect(r.size - at).toBe(33);
    r.close();
  });

  test('lastAtOrBefore finds the nearest keyframe at or before a step', () => {
    const r = TraceReader.open(path);
    const keyframes = r.framesOfKind('keyframe');
    expect(keyframes.map((f) => f.header.first)).toEqual([0, 3 * 4096, 6 * 4096]);
    expect(r.lastAtOrBefore('keyframe', 'first', 0)).toBe(keyframes[0]);
    expect(r.lastAtOrBefore('keyframe', 'first', 3 * 4096 - 1)).toBe(keyframes[0]);
    expect(r.lastAtOrBefore('keyframe', 'first', 3 * 4096)).toBe(keyframes[1]);
    expect(r.lastAtOrBefore('keyframe', 'first', 10n ** 12n)).toBe(keyframes[2]);
    expect(r.lastAtOrBefore('keyframe', 'first', -1)).toBeUndefined();
    expect(r.lastAtOrBefore('keyframe', 'missing', 5)).toBeUndefined();
    expect(r.lastAtOrBefore('nothing', 'first', 5)).toBeUndefined();
    r.close();
  });

  test('lastAtOrBefore agrees with a linear search, frames without the field included', () => {
    const p = fresh();
    const w = TraceWriter.create(p);
    const steps: (number | undefined)[] = [];
    for (let i = 0; i < 200; i++) {
      const step = i % 7 === 3 ? undefined : i * 10 + (i % 4);
      steps.push(step);
      w.append('keyframe', step === undefined ? {} : { step });
    }
    w.close();
    const r = TraceReader.open(p);
    for (let v = -5; v < 2020; v += 3) {
      let expected: number | undefined;
      steps.forEach((s, i) => {
        if (s !== undefined && s <= v) expected = i + 1;
      });
      expect(r.lastAtOrBefore('keyframe', 'step', v)?.number).toBe(expected);
    }
    r.close();
  });

  test('readPayload refuses a frame number the trace does not have', () => {
    const r = TraceReader.open(path);
    expect(() => r.readPayload(999)).toThrow(/no frame 999 \(the trace has frames 0-\d+\)/);
    expect(() => r.readPayload(1.5)).toThrow(TraceError);
    r.close();
  });
});

describe('the writer', () => {
  test('never overwrites an existing file unless asked', () => {
    const path = fresh();
    writeFileSync(path, 'precious');
    expect(() => TraceWriter.create(path)).toThrow(new RegExp(`${path}: already exists`));
    expect(readFileSync(path, 'utf8')).toBe('precious');
    const w = TraceWriter.create(path, { overwrite: true });
    w.close();
    expect(TraceReader.open(path).truncated).toBe(false);
  });

  test('refuses values other MessagePack libraries could not read back, before creating the file', () => {
    class Thing {}
    const cases: [PlainMap, RegExp][] = [
      [{ a: undefined } as unknown as PlainMap, /meta\.a is undefined/],
      [{ when: new Date() } as unknown as PlainMap, /meta\.when is a Date/],
      [{ m: new Map() } as unknown as PlainMap, /meta\.m is a Map/],
      [{ t: new Thing() } as unknown as PlainMap, /meta\.t is a Thing/],
      [{ f: new Float32Array(2) } as unknown as PlainMap, /meta\.f is a Float32Array/],
      [{ s: [1, Symbol('x')] } as unknown as PlainMap, /meta\.s\[1\] is a symbol/],
      [JSON.parse('{"__proto__": 1}') as PlainMap, /'__proto__'/],
      [{ b: 2n ** 64n }, /does not fit in 64 bits/],
      [{ deep: JSON.parse('['.repeat(40) + ']'.repeat(40)) as PlainMap }, /nested more than 32 deep/],
    ];
    for (const [meta, message] of cases) {
      const path = fresh();
      expect(() => TraceWriter.create(path, { meta })).toThrow(message);
      expect(existsSync(path)).toBe(false);
    }
  });

  test('checks kinds, headers and payloads on append, and refuses to append after close', () => {
    const path = fresh();
    const w = TraceWriter.create(path);
    expect(() => w.append('Chunk')).toThrow(/'Chunk' is not a frame kind/);
    expect(() => w.append('')).toThrow(/is not a frame kind/);
    expect(() => w.append('index')).toThrow(/written by the container itself/);
    expect(() => w.append('end')).toThrow(/written by the container itself/);
    expect(() => w.append('chunk', { at: undefined } as unknown as PlainMap)).toThrow(/the chunk frame's header\.at is undefined/);
    expect(() => w.append('chunk', {}, [1, 2] as unknown as Uint8Array)).toThrow(/payload must be a Uint8Array/);
    expect(w.frameCount).toBe(1); // nothing was written by the refused appends
    w.append('chunk');
    expect(() => w.close({ bad: new Date() } as unknown as PlainMap)).toThrow(/final metadata\.bad is a Date/);
    expect(w.closed).toBe(false); // refused metadata leaves the writer open
    w.close();
    w.close();
    expect(() => w.append('chunk')).toThrow(/closed/);
    const r = TraceReader.open(path);
    expect(r.frames.map((f) => f.kind)).toEqual(['header', 'chunk', 'end', 'index']);
    expect(r.readPayload(1)).toEqual(new Uint8Array(0));
  });

  test('a trace that is never closed reads as truncated, with all its frames', () => {
    const path = fresh();
    const w = TraceWriter.create(path);
    for (let i = 0; i < 5; i++) w.append('chunk', { i }, bytes(i * 50, i));
    const r = TraceReader.open(path);
    expect(r.truncated).toBe(true);
    expect(r.via).toBe('scan');
    expect(r.frames.length).toBe(6);
    expect(r.dataEnd).toBe(w.bytesWritten);
    for (let i = 0; i < 5; i++) expect(r.readPayload(i + 1)).toEqual(bytes(i * 50, i));
    expect(r.finalMeta).toBeUndefined();
    w.close();
  });

  test('a buffering writer writes the same bytes, payloads larger than its buffer included', () => {
    const created = new Date('2026-01-02T03:04:05.678Z');
    const sizes = [3, 900, 70_000, 0, 5, 200_000, 40, 1200, 65_536];
    const write = (path: string, buffer?: { bytes: number; ms: number }) => {
      const w = TraceWriter.create(path, { meta: META, created, buffer });
      // Payloads are views of one buffer that changes after each append: the writer must copy them.
      const scratch = new Uint8Array(200_000);
      sizes.forEach((n, i) => {
        scratch.set(bytes(n, i));
        w.append(i % 2 ? 'chunk' : 'run', { i, stack: bytes(64, i) }, scratch.subarray(0, n));
        scratch.fill(0xee);
      });
      w.close({ frames: sizes.length });
    };
    const plain = fresh();
    const buffered = fresh();
    write(plain);
    write(buffered, { bytes: 1000, ms: 60_000 });
    expectBytes(readFileSync(buffered), readFileSync(plain));
    const r = TraceReader.open(buffered);
    r.verify();
    sizes.forEach((n, i) => {
      expect(r.frames[i + 1]!.header).toEqual({ i, stack: bytes(64, i) });
      expectBytes(r.readPayload(i + 1), bytes(n, i));
    });
    r.close();
  });

  test('headers larger than 16 MiB are refused: they belong in payloads', () => {
    const w = TraceWriter.create(fresh());
    expect(() => w.append('chunk', { blob: new Uint8Array(17 << 20) })).toThrow(/more than 16777216; put bulk data in a payload/);
    w.close();
  });
});

describe('what the reader refuses', () => {
  const write = (data: Uint8Array | string) => {
    const p = fresh();
    writeFileSync(p, typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    return p;
  };

  test('files that are not traces', () => {
    for (const data of ['{"magic":"rewind-trace"}', '\x89PNG\r\n\x1a\n', 'x', '\x88\xa5magic\xacrewind-trac3\xa7version\x01']) {
      const p = write(data);
      expect(() => TraceReader.open(p)).toThrow(TraceFormatError);
      expect(() => TraceReader.open(p)).toThrow(`${p}: not a Rewind trace (it does not start with the 'rewind-trace' header)`);
    }
    expect(() => TraceReader.open(join(dir, 'missing.rwt'))).toThrow(/missing\.rwt: cannot open \(ENOENT\)/);
    expect(() => TraceReader.open(dir)).toThrow(/not a regular file/);
  });

  test('an empty file, and one cut inside its header, are truncated with nothing to replay', () => {
    expect(() => TraceReader.open(write(''))).toThrow(TraceTruncatedError);
    expect(() => TraceReader.open(write('\x88\xa5mag'))).toThrow(/ends after 5 bytes, inside the trace header: nothing to replay/);
  });

  /** A header frame as a future (or past) Rewind would write it: only magic/version/tool are fixed. */
  const versioned = (version: number, tool: string, rest = new Uint8Array(0)) => {
    const frame = encodeHeaderFrame(version, tool, packPlainMap({ created: 'x', meta: {} }, 'h'));
    const out = new Uint8Array(frame.length + rest.length);
    out.set(frame);
    out.set(rest, frame.length);
    return out;
  };

  test('a newer format version names the Rewind that can open it', () => {
    const p = write(versioned(3, 'rewind 9.1.0', Uint8Array.from([0xc1, 0xc1, 0xc1])));
    expect(() => TraceReader.open(p)).toThrow(TraceVersionError);
    expect(() => TraceReader.open(p)).toThrow(`${p}: format version 3 (written by rewind 9.1.0); this Rewind (${TOOL}) reads format versions 1-1: open it with rewind 9.1.0 or later`);
    try {
      TraceReader.open(p);
    } catch (e) {
      expect(e).toMatchObject({ version: 3, writtenBy: 'rewind 9.1.0' });
    }
  });

  test('a future header whose other entries changed is still identified by its first three', () => {
    // magic, version, tool, then a layout this Rewind knows nothing of.
    const head = Buffer.concat([Buffer.from([0x84, 0xa5]), Buffer.from('magic'), Buffer.from([0xac]), Buffer.from('rewind-trace'), Buffer.from([0xa7]), Buffer.from('version'), Buffer.from([0x07, 0xa4]), Buffer.from('tool'), Buffer.from([0xab]), Buffer.from('rewind 12.0'), Buffer.from([0xa1, 0x7a, 0xc1])]);
    expect(() => TraceReader.open(write(head))).toThrow(/format version 7 \(written by rewind 12\.0\); .* open it with rewind 12\.0 or later/);
  });

  test('an older, unsupported format version says so', () => {
    expect(() => TraceReader.open(write(versioned(0, 'rewind 0.0.1')))).toThrow(/format version 0 \(written by rewind 0\.0\.1\); this Rewind .* reads format versions 1-1: open it with rewind 0\.0\.1, which wrote it/);
  });

  test('a frame that says it has another number is corrupt', () => {
    const head = versioned(1, 'rewind test');
    const frame = encodeFrame('chunk', 5, packPlainMap({ first: 0 }, 'h'), bytes(4, 0));
    const p = write(Buffer.concat([head, frame]));
    expect(() => TraceReader.open(p)).toThrow(`${p}: frame 1 (chunk, first=0) at byte ${head.length}: the frame says it is frame 5`);
  });
});

describe('other MessagePack decoders read the file', () => {
  const path = fresh();
  const written = writeSample(path);
  const file = readFileSync(path);
  const reader = TraceReader.open(path);

  test('@msgpack/msgpack decodeMulti sees the header, every frame with its payload, the index and the trailer', () => {
    const values = [...decodeMulti(file)] as Record<string, unknown>[];
    expect(values.length).toBe(reader.frames.length + 1);
    expect(values[0]).toMatchObject({ magic: 'rewind-trace', version: 1, tool: TOOL, k: 'header', i: 0 });
    expect((values[0].h as PlainMap).created).toBe('2026-01-02T03:04:05.678Z');
    written.forEach((f, i) => {
      expect(values[i + 1]).toMatchObject({ k: f.kind, i: i + 1, h: f.header });
      expectBytes(values[i + 1].d as Uint8Array, f.payload);
    });
    const index = values[values.length - 2];
    expect(index.k).toBe('index');
    const entries = [...decodeMulti(index.d as Uint8Array)][0] as [string, number, number, PlainMap][];
    expect(entries.map(([k, i, offset]) => [k, i, offset])).toEqual(reader.frames.slice(0, -1).map((f) => [f.kind, f.number, f.offset]));
    expect(values[values.length - 1]).toEqual({ k: 'trailer', index: reader.frames[reader.frames.length - 1].offset, c: expect.any(Number) });
    // Each frame's c is the CRC-32 of the frame's bytes before its last 7.
    reader.frames.forEach((f, n) => expect(values[n].c).toBe(crc32(file.subarray(f.offset, f.offset + f.length - 7))));
  });

  const python = '/usr/bin/python3';
  const hasMsgpack = existsSync(python) && spawnSync(python, ['-c', 'import msgpack'], { stdio: 'ignore' }).status === 0;
  if (!hasMsgpack) console.log(`container: skipping the python3-msgpack check: ${python} with the msgpack module not found`);

  // Decodes with msgpack.Unpacker, finds each value's bytes with tell() and checks its CRC with zlib.
  const SCRIPT = `
import sys, json, zlib, msgpack
path = sys.argv[1]
raw = open(path, 'rb').read()
unpacker = msgpack.Unpacker(open(path, 'rb'), raw=False)
out = []
start = 0
for v in unpacker:
    end = unpacker.tell()
    item = dict(v)
    item['start'] = start
    item['end'] = end
    item['crc_ok'] = raw[end - 7:end - 4] == b'\\xa1c\\xce' and zlib.crc32(raw[start:end - 7]) == v['c']
    if v['k'] == 'index':
        item['entries'] = msgpack.unpackb(v['d'], raw=False)
    out.append(item)
    start = end
print(json.dumps(out, default=lambda b: b.hex()))
`;

  test.skipIf(!hasMsgpack)("Debian's python3-msgpack decodes every value, and zlib agrees with every checksum", () => {
    const run = spawnSync(python, ['-c', SCRIPT, path], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(run.status, run.stderr).toBe(0);
    const values = JSON.parse(run.stdout) as Record<string, unknown>[];
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    expect(values.length).toBe(reader.frames.length + 1);
    for (const v of values) expect(v.crc_ok).toBe(true);
    expect(values[0]).toMatchObject({ magic: 'rewind-trace', version: 1, tool: TOOL, k: 'header', i: 0, d: '' });
    const meta = (values[0].h as { meta: Record<string, unknown> }).meta;
    expect(meta).toMatchObject({ text: 'Größe ✓', ratio: 0.25, none: null, flags: [true, false] });
    expect(meta.program).toEqual({ name: 'xdp_pass', insns: hex(bytes(40, 1)), sections: ['xdp', 'maps'] });
    // Integers beyond 32 bits arrive as integers (int 64), not floats.
    expect(meta.limits).toEqual({ steps: 5_000_000, big: 2 ** 40, negative: -(2 ** 35), huge: 9223372036854775808, small: -7 });
    expect(run.stdout).toContain('"huge": 9223372036854775808,');
    written.forEach((f, i) => {
      expect(values[i + 1]).toMatchObject({ k: f.kind, i: i + 1, h: f.header, d: hex(f.payload) });
    });
    reader.frames.forEach((f, n) => expect([values[n].start, values[n].end]).toEqual([f.offset, f.offset + f.length]));
    const index = values[values.length - 2];
    expect((index.entries as unknown[][]).map(([k, i, offset]) => [k, i, offset])).toEqual(reader.frames.slice(0, -1).map((f) => [f.kind, f.number, f.offset]));
    const trailer = values[values.length - 1];
    expect(trailer).toMatchObject({ k: 'trailer', index: index.start, end: file.length, crc_ok: true });
    expect((trailer.end as number) - (trailer.start as number)).toBe(33);
  });
});
