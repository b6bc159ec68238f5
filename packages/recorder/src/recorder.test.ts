import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, decode, loadPackets, programFromBytecode, loadProgramFile, Session, type Program, type MapDef, type RunInput } from '@rewind/vm';
import { Recorder, RECORD_SLICE, trimmed } from './recorder.js';
import { TraceReader } from './container/reader.js';
import { unpackPlain, type PlainMap } from './container/plain.js';
import { bruteForce, checkWalk, type LogEntry } from './steps/test-support.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const firewall = join(repo, 'examples/xdp-firewall/xdp-firewall.o');
const tailPipeline = join(repo, 'examples/tail-pipeline/tail-pipeline.o');
const mixed = join(repo, 'examples/pcaps/mixed.pcap');
const examples = existsSync(firewall) && existsSync(tailPipeline) && existsSync(mixed);
if (!examples) console.log('recorder tests skipped: the examples (xdp-firewall.o, tail-pipeline.o, mixed.pcap) are missing');
const PYTHON = '/usr/bin/python3';

/** examples/xdp-firewall/maps.json (what --maps loads): hex keys and values by map name. */
function fillMaps(session: Session): number {
  const file = JSON.parse(readFileSync(join(repo, 'examples/xdp-firewall/maps.json'), 'utf8')) as Record<string, { key: string; value: string }[]>;
  let n = 0;
  for (const [name, entries] of Object.entries(file)) {
    const map = session.maps.find((m) => m.name === name)!;
    for (const e of entries) {
      expect(map.update(Buffer.from(e.key, 'hex'), Buffer.from(e.value, 'hex'), 0)).toBe(0);
      n++;
    }
  }
  return n;
}

function inputs(): RunInput[] {
  return loadPackets({ pcap: mixed })!.packets.map((p) => ({ packet: p.data, timeNs: p.timestampNs ?? 0n }));
}

/** The same runs on a session that logs every write explicitly (out-of-line writes observed the same way, so the same stores take the slow path). */
function explicitLogs(programs: readonly Program[], maps: readonly MapDef[], name: string, runs: RunInput[], prepare?: (s: Session) => void): LogEntry[][] {
  const s = new Session(programs, maps, { instrument: bruteForce() });
  prepare?.(s);
  const log: LogEntry[] = [];
  (s.machine as unknown as { log: LogEntry[] }).log = log;
  s.machine.onWrite = () => {};
  return runs.map((input) => {
    log.length = 0;
    s.run(name, input);
    return log.slice();
  });
}

interface RunFrames {
  header: PlainMap;
  payload: PlainMap;
  chunks: { header: PlainMap; payload: PlainMap }[];
}

function readRuns(r: TraceReader): RunFrames[] {
  const runs: RunFrames[] = [];
  for (const f of r.frames) {
    if (f.kind === 'run') runs.push({ header: f.header as PlainMap, payload: unpackPlain(r.readPayload(f.number)) as PlainMap, chunks: [] });
    if (f.kind === 'chunk') {
      const run = runs[runs.length - 1]!;
      expect((f.header as PlainMap).run).toBe(run.header.run);
      run.chunks.push({ header: f.header as PlainMap, payload: unpackPlain(r.readPayload(f.number)) as PlainMap });
    }
  }
  return runs;
}

const events = (run: RunFrames) => run.chunks.flatMap((c) => c.payload.events as PlainMap[]);

/** Walks a run's chunks from the trace alone and checks every register write and inline store against the explicit log. */
function checkDecode(run: RunFrames, programs: { name: string; code: ReturnType<typeof decode>; entryEnd: number }[], log: LogEntry[]): number {
  const first = run.header.firstStep as number;
  const chunks = run.chunks.map((c) => {
    const key = c.payload.key as PlainMap;
    const regs = new Int32Array(22);
    (key.regs as Uint8Array[]).forEach((b, i) => {
      regs[2 * i] = new DataView(b.buffer, b.byteOffset).getInt32(0, true);
      regs[2 * i + 1] = new DataView(b.buffer, b.byteOffset).getInt32(4, true);
    });
    return {
      program: programs.findIndex((p) => p.name === key.program),
      pc: key.pc as number,
      regs,
      records: c.payload.records as Uint8Array,
      events: c.payload.events as unknown as { t: string; step: number }[],
      base: (c.header.firstStep as number) - first,
      count: (c.header.lastStep as number) - (c.header.firstStep as number),
    };
  });
  return checkWalk(programs, chunks, log);
}

const walkPrograms = (programs: readonly Program[]) => programs.map((p) => ({ name: p.name, code: p.code, entryEnd: p.funcs.find((f) => f.start === 0)?.end ?? p.code.length }));

describe.skipIf(!examples)('Recorder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-recorder-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('xdp-firewall on mixed.pcap: frames, boundaries, CRCs, and step records that decode to every write', () => {
    const src = loadProgramFile(firewall);
    const prog = src.programs[0]!;
    const runs = inputs();
    const path = join(dir, 'firewall.rwt');
    const rec = Recorder.create(path, { programs: src.programs, maps: src.maps, meta: { source: 'xdp-firewall.o' } });
    const filled = fillMaps(rec.session);
    const outcomes = runs.map((input) => rec.run(prog.name, input));
    rec.close();
    const logs = explicitLogs(src.programs, src.maps, prog.name, runs, fillMaps);

    const r = TraceReader.open(path);
    r.verify();
    expect(r.truncated).toBe(false);
    const meta = (r.header.meta as PlainMap);
    const programs = meta.programs as PlainMap[];
    expect(programs.map((p) => p.name)).toEqual(src.programs.map((p) => p.name));
    expect((programs[0]!.bytecode as Uint8Array).length).toBe(prog.code.length * 8);
    expect((meta.maps as PlainMap[]).map((m) => m.name)).toEqual(src.maps.map((m) => m.name));
    expect(meta.slice).toBe(RECORD_SLICE);
    // Every map has its handle region; global data has its value region from the start.
    const regions = meta.regions as PlainMap[];
    expect(regions.filter((x) => x.kind === 'map').length).toBe(src.maps.length);
    for (const x of regions.filter((x) => x.kind === 'map_value')) expect(src.maps[x.map as number]!.globalData).toBe(true);

    const kinds = r.frames.map((f) => f.kind);
    expect(kinds[0]).toBe('header');
    expect(kinds.filter((k) => k === 'run').length).toBe(runs.length);
    expect(kinds.slice(-2)).toEqual(['end', 'index']);

    const code = decode(programs[0]!.bytecode as Uint8Array);
    const frames = readRuns(r);
    expect(frames.length).toBe(runs.length);
    let helpers = 0;
    frames.forEach((run, k) => {
      const first = run.header.firstStep as number;
      const steps = outcomes[k]!.steps;
      // A run's steps go from firstStep (the state before its first instruction) to firstStep + instructions.
      if (k > 0) expect(first).toBe((frames[k - 1]!.chunks.at(-1)!.header.lastStep as number) + 1);
      expect(run.chunks.length).toBe(Math.max(1, Math.ceil(steps / RECORD_SLICE)));
      expect(run.chunks[0]!.header.firstStep).toBe(first);
      expect(run.chunks.at(-1)!.header.lastStep).toBe(first + steps);
      // The inputs and r1 (the context) and r10 (the frame pointer) at start.
      expect(Array.from(run.payload.packet as Uint8Array)).toEqual(Array.from(runs[k]!.packet!));
      const regs = run.payload.regs as Uint8Array[];
      expect(regs.length).toBe(11);
      expect(new DataView(regs[10]!.buffer, regs[10]!.byteOffset).getUint32(0, true)).toBe(512);
      const outcome = run.chunks.at(-1)!.payload.outcome as PlainMap;
      expect(outcome.verdict).toBe(outcomes[k]!.verdict);
      expect(outcome.steps).toBe(steps);
      const ev = events(run);
      helpers += ev.filter((e) => e.t === 'helper').length;
      for (const e of ev.filter((e) => e.t === 'helper')) expect((e.r0 as Uint8Array).length).toBe(8);
      expect(checkDecode(run, walkPrograms(src.programs), logs[k]!)).toBe(steps);
    });
    expect(helpers).toBeGreaterThan(0);
    // The maps.json updates come before the first run; the denied port's counter is an atomic add, written out of line.
    expect((frames[0]!.payload.between as PlainMap[]).filter((e) => e.t === 'map' && e.op === 'update').length).toBe(filled);
    expect(frames.flatMap(events).filter((e) => e.t === 'write').length).toBeGreaterThan(0);
    expect(frames.flatMap(events).filter((e) => e.t === 'region').length).toBeGreaterThan(0);
    const end = r.finalMeta as PlainMap;
    expect((end.runs as PlainMap[]).map((x) => x.verdict)).toEqual(outcomes.map((o) => o.verdict));
    expect(end.totalSteps).toBe(outcomes.reduce((n, o) => n + o.steps + 1, 0));
    r.close();
  });

  test('a run longer than a slice is cut into chunks that each decode from their own keyframe', () => {
    const code = assemble(`
      mov %r6, 0
      mov %r7, 60000
    loop:
      add %r6, 3
      stxdw [%r10-8], %r6
      add %r7, -1
      jne %r7, 0, loop
      mov %r0, %r6
      exit`);
    const prog = programFromBytecode(code);
    const runs: RunInput[] = [{ mem: new Uint8Array(8) }, { mem: new Uint8Array(8) }];
    const path = join(dir, 'long.rwt');
    const rec = Recorder.create(path, { programs: [prog], maps: [] });
    const outcomes = runs.map((input) => rec.run(prog.name, input));
    rec.close();
    expect(outcomes[0]!.steps).toBe(2 + 4 * 60000 + 2);
    const logs = explicitLogs([prog], [], prog.name, runs);
    const r = TraceReader.open(path);
    r.verify();
    const frames = readRuns(r);
    frames.forEach((run, k) => {
      expect(run.chunks.length).toBeGreaterThan(1);
      // Chunks meet: each starts where the previous one stopped; slices end at block boundaries at or before RECORD_SLICE.
      run.chunks.slice(1).forEach((c, i) => {
        expect(c.header.firstStep).toBe(run.chunks[i]!.header.lastStep);
        expect((c.header.firstStep as number) - (run.chunks[i]!.header.firstStep as number)).toBeLessThanOrEqual(RECORD_SLICE);
        expect(c.payload.pc).toBe(2);
      });
      expect(checkDecode(run, walkPrograms([prog]), logs[k]!)).toBe(outcomes[k]!.steps);
    });
    r.close();
  });

  test('tail-pipeline from xdp_entry: every tail call is an event, and the run ends in the last target', () => {
    const src = loadProgramFile(tailPipeline);
    const entry = src.programs.find((p) => p.section === 'xdp_entry') ?? src.programs.find((p) => p.name === 'xdp_entry');
    expect(entry, `programs: ${src.programs.map((p) => `${p.section}/${p.name}`).join(', ')}`).toBeDefined();
    const runs = inputs();
    const path = join(dir, 'tail.rwt');
    const rec = Recorder.create(path, { programs: src.programs, maps: src.maps });
    const outcomes = runs.map((input) => rec.run(entry!.name, input));
    rec.close();
    const r = TraceReader.open(path);
    r.verify();
    const frames = readRuns(r);
    let tailCalls = 0;
    frames.forEach((run, k) => {
      const ev = events(run);
      const tails = ev.filter((e) => e.t === 'tailcall');
      tailCalls += tails.length;
      // The outcome's program is the last tail call's target.
      if (tails.length) expect(tails.at(-1)!.program).toBe(outcomes[k]!.program);
      expect(run.chunks.at(-1)!.header.lastStep).toBe((run.header.firstStep as number) + outcomes[k]!.steps);
    });
    expect(tailCalls).toBeGreaterThan(0);
    r.close();
  });

  test.skipIf(!existsSync(PYTHON))('python3-msgpack reads the trace on its own', () => {
    let hasMsgpack = true;
    try {
      execFileSync(PYTHON, ['-c', 'import msgpack']);
    } catch {
      hasMsgpack = false;
      console.log('python3-msgpack check skipped: /usr/bin/python3 has no msgpack module');
    }
    if (!hasMsgpack) return;
    const src = loadProgramFile(firewall);
    const runs = inputs().slice(0, 5);
    const path = join(dir, 'py.rwt');
    const rec = Recorder.create(path, { programs: src.programs, maps: src.maps });
    const outcomes = runs.map((input) => rec.run(src.programs[0]!.name, input));
    rec.close();
    // Walks the frames as a stream of MessagePack maps up to the trailer; sums what the chunks carry.
    const script = `
import sys, json, msgpack, zlib
data = open(sys.argv[1], 'rb').read()
u = msgpack.Unpacker(raw=False, strict_map_key=False)
u.feed(data)
kinds = []; verdicts = []; records = 0; events = 0
for obj in u:
    if obj.get('k') == 'trailer':
        break
    kinds.append(obj['k'])
    if obj['k'] == 'chunk':
        p = msgpack.unpackb(obj['d'], raw=False, strict_map_key=False)
        records += len(p['records']); events += len(p['events'])
        if 'outcome' in p: verdicts.append(p['outcome']['verdict'])
print(json.dumps({'kinds': kinds, 'verdicts': verdicts, 'records': records, 'events': events}))
`;
    const out = JSON.parse(execFileSync(PYTHON, ['-c', script, path], { encoding: 'utf8' })) as { kinds: string[]; verdicts: string[]; records: number; events: number };
    const r = TraceReader.open(path);
    expect(out.kinds).toEqual(r.frames.map((f) => f.kind));
    expect(out.verdicts).toEqual(outcomes.map((o) => o.verdict));
    const frames = readRuns(r);
    expect(out.records).toBe(frames.flatMap((f) => f.chunks).reduce((n, c) => n + (c.payload.records as Uint8Array).length, 0));
    expect(out.events).toBe(frames.flatMap(events).length);
    r.close();
  });

});

describe.skipIf(!examples)('helpers made for one map, recorded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-recorder-special-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('tail-pipeline and xdp-firewall record the same frames whether their lookups and tail calls use versions made for their maps or the generic helpers', () => {
    for (const [obj, section, fill] of [[tailPipeline, 'xdp_entry', undefined], [firewall, undefined, fillMaps]] as const) {
      const src = loadProgramFile(obj);
      const entry = section ?? src.programs[0]!.name;
      const payloads: PlainMap[][] = [];
      for (const specializeHelpers of [true, false]) {
        const path = join(dir, `${entry}-${specializeHelpers}.rwt`);
        const rec = Recorder.create(path, { programs: src.programs, maps: src.maps, sessionOptions: { specializeHelpers } });
        fill?.(rec.session);
        for (const input of inputs()) rec.run(entry, input);
        rec.close();
        // The versions made for a map were called (or, in the second trace, not compiled in).
        expect(rec.session.program(entry).compiled.source.includes('HM[')).toBe(specializeHelpers);
        const r = TraceReader.open(path);
        payloads.push([...r.framesOfKind('run'), ...r.framesOfKind('chunk')].map((f) => unpackPlain(r.readPayload(f.number)) as PlainMap));
        r.close();
      }
      expect(payloads[0]!.length).toBeGreaterThan(20);
      expect(payloads[0]).toEqual(payloads[1]);
    }
  });
});

describe('keyframe bytes', () => {
  test('trimming zeros from both ends agrees with a byte-by-byte scan, aligned or not', () => {
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const buf = new Uint8Array(1100);
    for (let k = 0; k < 400; k++) {
      buf.fill(0);
      const off = Math.floor(rand() * 8);
      const len = Math.floor(rand() * 1024);
      // A few non-zero bytes anywhere, or none.
      for (let j = Math.floor(rand() * 4); j > 0; j--) buf[off + Math.floor(rand() * Math.max(1, len))] = 1 + Math.floor(rand() * 255);
      const bytes = buf.subarray(off, off + len);
      let a = 0;
      let b = len;
      while (a < b && bytes[a] === 0) a++;
      while (b > a && bytes[b - 1] === 0) b--;
      const t = trimmed(3, 100, bytes);
      expect([t.lo, (t.bytes as Uint8Array).length], `offset ${off}, length ${len}`).toEqual([100 + a, b - a]);
    }
  });
});
