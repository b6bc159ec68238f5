// Differential tests against the running kernel: the same scripted operations go to a real map
// (through bpftool, whose exit status is the syscall's -errno & 0xff) and to Rewind's map, and
// every result must agree. Needs root and bpftool; skipped with a note otherwise.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { BloomFilterMap } from './bloom_filter.js';
import { createMap } from './create.js';
import { toHex } from './dump.js';
import { MapCreateError, type BpfMap } from './map.js';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EINVAL, ENOTSUPP, errnoName } from './uapi.js';

const BPFTOOL = ['/usr/sbin/bpftool', '/usr/bin/bpftool', '/sbin/bpftool'].find((p) => existsSync(p));

interface KernelEnv {
  dir: string;
  mounted: boolean;
  cpus: number;
}

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { rc: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function tool(args: string[]) {
  return run(BPFTOOL!, ['-j', ...args]);
}

/** Pins go in a directory of our own: under /sys/fs/bpf when it is a bpffs, else on a bpffs we mount. */
function setUp(): KernelEnv | string {
  if (!BPFTOOL) return 'bpftool not found';
  if (process.getuid?.() !== 0) return 'not root';
  const name = `rewind-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  let env: KernelEnv;
  if (run('stat', ['-f', '-c', '%T', '/sys/fs/bpf']).out.trim() === 'bpf_fs') {
    const dir = join('/sys/fs/bpf', name);
    mkdirSync(dir);
    env = { dir, mounted: false, cpus: 1 };
  } else {
    const dir = mkdtempSync(join(tmpdir(), `${name}-`));
    if (run('mount', ['-t', 'bpf', 'bpf', dir]).rc !== 0) {
      rmdirSync(dir);
      return 'cannot mount a bpf filesystem';
    }
    env = { dir, mounted: true, cpus: 1 };
  }
  const probe = tool(['map', 'create', join(env.dir, 'probe'), 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'probe']);
  if (probe.rc !== 0) {
    tearDown(env);
    return `bpf() is not available: ${probe.out.trim() || probe.err.trim()}`;
  }
  // Per-CPU values come back one per possible CPU.
  const pc = JSON.parse(
    tool(['map', 'create', join(env.dir, 'pcprobe'), 'type', 'percpu_array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'pcprobe']).rc === 0
      ? tool(['map', 'lookup', 'pinned', join(env.dir, 'pcprobe'), 'key', 'hex', '00', '00', '00', '00']).out
      : '{}',
  );
  env.cpus = pc.values?.length ?? 1;
  return env;
}

function tearDown(env: KernelEnv): void {
  for (const f of readdirSync(env.dir)) {
    try {
      rmSync(join(env.dir, f));
    } catch {
      // The kernel's own preloaded iterators (maps.debug, progs.debug) cannot be removed.
    }
  }
  if (env.mounted) run('umount', [env.dir]);
  rmdirSync(env.dir);
}

const env = setUp();
if (typeof env === 'string') console.log(`maps/kernel.test.ts: skipping the kernel differential tests (${env})`);
afterAll(() => {
  if (typeof env !== 'string') tearDown(env);
});

const hexArgs = (b: Uint8Array) => ['hex', ...[...b].map((x) => x.toString(16).padStart(2, '0'))];
const fromJson = (a: string[]) => Uint8Array.from(a.map((x) => parseInt(x, 16)));
/** bpftool exits with the syscall's return value: -errno & 0xff. */
const errnoOf = (rc: number) => (rc === 0 ? 0 : rc - 256);
const FLAG_WORDS: Record<number, string> = { [BPF_ANY]: 'any', [BPF_NOEXIST]: 'noexist', [BPF_EXIST]: 'exist' };
const STRERROR: Record<string, number> = { 'Invalid argument': -EINVAL, 'Argument list too long': -E2BIG, 'Unknown error 524': -ENOTSUPP };

/** A kernel map pinned in our directory, driven through bpftool. */
class KernelMap {
  constructor(readonly pin: string) {}

  static create(e: KernelEnv, d: MapDef): KernelMap | number {
    const type = Object.entries(BPF_MAP_TYPE).find(([, id]) => id === d.type)![0];
    const pin = join(e.dir, `${d.name}-${randomBytes(3).toString('hex')}`);
    const r = tool(['map', 'create', pin, 'type', type, 'key', `${d.keySize}`, 'value', `${d.valueSize}`, 'entries', `${d.maxEntries}`, 'name', d.name, 'flags', `${d.flags}`]);
    if (r.rc === 0) return new KernelMap(pin);
    const msg: string = JSON.parse(r.out).error;
    const errno = STRERROR[msg.replace(/^map create failed: /, '')];
    if (errno === undefined) throw new Error(`bpftool map create: ${msg}`);
    return errno;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number): number {
    const keyArgs = key.length ? ['key', ...hexArgs(key)] : [];
    return errnoOf(tool(['map', 'update', 'pinned', this.pin, ...keyArgs, 'value', ...hexArgs(value), FLAG_WORDS[flags]]).rc);
  }

  /** The value (per-CPU maps: every CPU's, each padded to 8 bytes), or -errno. */
  lookup(key: Uint8Array): Uint8Array | number {
    const r = tool(['map', 'lookup', 'pinned', this.pin, 'key', ...hexArgs(key)]);
    if (r.rc !== 0) return errnoOf(r.rc);
    const j = JSON.parse(r.out);
    if (!j.values) return fromJson(j.value);
    const size = j.values[0].value.length;
    const stride = Math.ceil(size / 8) * 8;
    const out = new Uint8Array(j.values.length * stride);
    j.values.forEach((v: { value: string[] }, cpu: number) => out.set(fromJson(v.value), cpu * stride));
    return out;
  }

  delete(key: Uint8Array): number {
    return errnoOf(tool(['map', 'delete', 'pinned', this.pin, 'key', ...hexArgs(key)]).rc);
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    const r = tool(['map', 'getnext', 'pinned', this.pin, ...(key ? ['key', ...hexArgs(key)] : [])]);
    return r.rc === 0 ? fromJson(JSON.parse(r.out).next_key) : undefined;
  }

  push(value: Uint8Array): number {
    return errnoOf(tool(['map', 'push', 'pinned', this.pin, 'value', ...hexArgs(value)]).rc);
  }

  popOrPeek(verb: 'pop' | 'peek'): Uint8Array | number {
    const r = tool(['map', verb, 'pinned', this.pin]);
    return r.rc === 0 ? fromJson(JSON.parse(r.out).value) : errnoOf(r.rc);
  }

  /** Keys and values, sorted by key. */
  dump(): string[] {
    const j = JSON.parse(tool(['map', 'dump', 'pinned', this.pin]).out) as { key: string[]; value?: string[] }[];
    return j.map((e) => `${toHex(fromJson(e.key))}=${e.value ? toHex(fromJson(e.value)) : ''}`).sort();
  }
}

function ourDump(m: BpfMap): string[] {
  return [...m.entries()].map((e) => `${toHex(e.key)}=${toHex(e.value)}`).sort();
}

function lcg(seed: number) {
  return (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
}

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const show = (r: Uint8Array | number) => (typeof r === 'number' ? errnoName(r) : toHex(r));

function def(type: keyof typeof BPF_MAP_TYPE, over: Partial<MapDef> = {}): MapDef {
  return { name: type.slice(0, 15), type: BPF_MAP_TYPE[type], keySize: 4, valueSize: 4, maxEntries: 2, flags: 0, ...over };
}

/** Random updates, deletes and lookups over a few keys, compared step by step. */
function compareKeyedOps(e: KernelEnv, d: MapDef, keyCount: number, steps: number, seed: number): void {
  const ours = createMap(d, { cpus: e.cpus });
  const theirs = KernelMap.create(e, d);
  if (typeof theirs === 'number') throw new Error(`kernel refused ${d.name}: ${errnoName(theirs)}`);
  const rand = lcg(seed);
  const percpu = d.type === BPF_MAP_TYPE.percpu_hash || d.type === BPF_MAP_TYPE.percpu_array || d.type === BPF_MAP_TYPE.lru_percpu_hash;
  for (let i = 0; i < steps; i++) {
    const key = u32(rand(keyCount));
    const what = rand(4);
    const step = `step ${i}`;
    if (what <= 1) {
      const value = u32(rand(1000));
      const flags = [BPF_ANY, BPF_NOEXIST, BPF_EXIST][rand(3)];
      // bpftool writes the same value to every CPU of a per-CPU map.
      const mine = percpu ? ours.updateAllCpus(key, repeat(value, e.cpus), flags) : ours.update(key, value, flags);
      expect([step, 'update', FLAG_WORDS[flags], errnoName(mine)]).toEqual([step, 'update', FLAG_WORDS[flags], errnoName(theirs.update(key, value, flags))]);
    } else if (what === 2) {
      expect([step, 'delete', errnoName(ours.delete(key))]).toEqual([step, 'delete', errnoName(theirs.delete(key))]);
    } else {
      expect([step, 'lookup', show(ours.lookupSys(key))]).toEqual([step, 'lookup', show(theirs.lookup(key))]);
    }
  }
  if (!percpu) expect(ourDump(ours)).toEqual(theirs.dump());
}

function repeat(value: Uint8Array, cpus: number): Uint8Array {
  const stride = Math.ceil(value.length / 8) * 8;
  const out = new Uint8Array(cpus * stride);
  for (let c = 0; c < cpus; c++) out.set(value, c * stride);
  return out;
}

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? (run('sh', ['-c', 'command -v python3']).out.trim() || undefined);

// BPF_OBJ_GET the pinned bloom filter, push values and test others with BPF_MAP_LOOKUP_ELEM
// (which bpftool cannot do for a bloom filter); prints one errno per test value.
const BLOOM_SCRIPT = `
import ctypes, platform, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR_BPF = {'x86_64': 321, 'aarch64': 280}[platform.machine()]
def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(NR_BPF, cmd, buf, 128)
    return r if r >= 0 else -ctypes.get_errno()
path = ctypes.create_string_buffer(sys.argv[1].encode())
fd = bpf(7, struct.pack('<QIIi', ctypes.addressof(path), 0, 0, 0))
assert fd >= 0, fd
def elem(cmd, hexval, flags):
    v = ctypes.create_string_buffer(bytes.fromhex(hexval))
    return bpf(cmd, struct.pack('<IIQQQ', fd, 0, 0, ctypes.addressof(v), flags))
for h in sys.argv[2].split(','):
    assert elem(2, h, 0) == 0
print(' '.join(str(elem(1, h, 0)) for h in sys.argv[3].split(',')))
`;

describe.skipIf(typeof env === 'string')('maps against the kernel (bpftool)', () => {
  const e = env as KernelEnv;

  it('hash: flags, full map, deletes and lookups', () => {
    compareKeyedOps(e, def('hash'), 4, 120, 1);
  });

  it('percpu_hash: the same, with values on every CPU', () => {
    compareKeyedOps(e, def('percpu_hash'), 4, 60, 2);
  });

  it('lru_hash: flags and lookups while the map has room', () => {
    // LRU eviction is approximate in the kernel; with 1024 entries and 4 keys nothing is evicted.
    compareKeyedOps(e, def('lru_hash', { maxEntries: 1024 }), 4, 80, 3);
  });

  it('array and percpu_array: flags, bounds, delete and lookups', () => {
    compareKeyedOps(e, def('array', { maxEntries: 3 }), 5, 80, 4);
    compareKeyedOps(e, def('percpu_array', { maxEntries: 3 }), 5, 40, 5);
  });

  it('array: getNextKey', () => {
    const d = def('array', { maxEntries: 3 });
    const ours = createMap(d);
    const theirs = KernelMap.create(e, d) as KernelMap;
    for (const k of [undefined, u32(0), u32(1), u32(2), u32(3), u32(99)]) {
      expect(show(ours.getNextKey(k) ?? -2)).toBe(show(theirs.getNextKey(k) ?? -2));
    }
  });

  it('lpm_trie: update results, longest-prefix lookups, iteration order and deletes', () => {
    const d = def('lpm_trie', { keySize: 8, maxEntries: 6, flags: 1 });
    const ours = createMap(d);
    const theirs = KernelMap.create(e, d) as KernelMap;
    const key = (len: number, a: number, b = 0, c = 0, dd = 0) => {
      const k = new Uint8Array([0, 0, 0, 0, a, b, c, dd]);
      new DataView(k.buffer).setUint32(0, len, true);
      return k;
    };
    const walk = (m: { getNextKey(k: Uint8Array | undefined): Uint8Array | undefined }) => {
      const out: string[] = [];
      for (let k = m.getNextKey(undefined); k && out.length < 20; k = m.getNextKey(k)) out.push(toHex(k));
      return out;
    };
    const updates: [Uint8Array, number][] = [
      [key(8, 10), BPF_EXIST],
      [key(8, 10), BPF_NOEXIST],
      [key(8, 10), BPF_NOEXIST],
      [key(16, 10, 1), BPF_ANY],
      [key(16, 10, 2), BPF_ANY],
      [key(9, 10, 128), BPF_ANY],
      [key(24, 10, 1, 2, 99), BPF_ANY],
      [key(14, 10, 0), BPF_EXIST],
      [key(14, 10, 0), BPF_ANY],
      [key(32, 10, 1, 2, 3), BPF_ANY],
      [key(16, 10, 1), BPF_EXIST],
      [key(33, 10), BPF_ANY],
      [key(0, 0), BPF_ANY],
    ];
    updates.forEach(([k, f], i) => {
      const v = u32(i + 1);
      expect([toHex(k), FLAG_WORDS[f], errnoName(ours.update(k, v, f))]).toEqual([toHex(k), FLAG_WORDS[f], errnoName(theirs.update(k, v, f))]);
    });
    expect(walk(ours)).toEqual(walk(theirs));
    const rand = lcg(7);
    for (let i = 0; i < 40; i++) {
      const k = key(32, [10, rand(256)][rand(2)], [1, 2, 128, rand(256)][rand(4)], [2, rand(256)][rand(2)], [3, rand(256)][rand(2)]);
      expect([toHex(k), show(ours.lookupSys(k))]).toEqual([toHex(k), show(theirs.lookup(k))]);
    }
    for (const k of [key(16, 10, 1), key(16, 10, 1), key(8, 10), key(17, 10, 2), key(33, 0)]) {
      expect([toHex(k), errnoName(ours.delete(k))]).toEqual([toHex(k), errnoName(theirs.delete(k))]);
      expect(walk(ours)).toEqual(walk(theirs));
    }
    expect(show(ours.lookupSys(key(32, 10, 1, 9, 9)))).toBe(show(theirs.lookup(key(32, 10, 1, 9, 9))));
  });

  for (const type of ['queue', 'stack'] as const) {
    it(`${type}: push order, full map, BPF_EXIST overwrite, pop and peek`, () => {
      const d = def(type, { keySize: 0, maxEntries: 3 });
      const ours = createMap(d);
      const theirs = KernelMap.create(e, d) as KernelMap;
      const out = new Uint8Array(4);
      const mine = (verb: 'pop' | 'peek') => {
        const r = verb === 'pop' ? ours.pop(out) : ours.peek(out);
        return r || out.slice();
      };
      const script: (['push', number] | ['exist', number] | ['pop'] | ['peek'])[] = [
        ['pop'],
        ['push', 1],
        ['push', 2],
        ['peek'],
        ['push', 3],
        ['push', 4],
        ['exist', 5],
        ['exist', 6],
        ['pop'],
        ['push', 7],
        ['pop'],
        ['pop'],
        ['pop'],
        ['pop'],
      ];
      script.forEach((s, i) => {
        const got =
          s[0] === 'push' ? errnoName(ours.push(u32(s[1]), BPF_ANY)) : s[0] === 'exist' ? errnoName(ours.push(u32(s[1]), BPF_EXIST)) : show(mine(s[0]));
        const want =
          s[0] === 'push' ? errnoName(theirs.push(u32(s[1]))) : s[0] === 'exist' ? errnoName(theirs.update(new Uint8Array(0), u32(s[1]), BPF_EXIST)) : show(theirs.popOrPeek(s[0]));
        expect([i, ...s, got]).toEqual([i, ...s, want]);
      });
    });
  }

  it('devmap, devmap_hash and cpumap: update and delete results', () => {
    // Interface 1 is the loopback device, which every network namespace has.
    const pair = (a: number, b: number) => new Uint8Array(new Uint32Array([a, b]).buffer);
    const script: [MapDef, 'update' | 'delete' | 'lookup', number, Uint8Array, number][] = [];
    const dm = def('devmap', { valueSize: 8, maxEntries: 4 });
    const dh = def('devmap_hash', { maxEntries: 2 });
    const cm = def('cpumap', { maxEntries: 4 });
    script.push(
      [dm, 'update', 0, pair(1, 0), BPF_ANY],
      [dm, 'update', 0, pair(1, 0), BPF_NOEXIST],
      [dm, 'update', 0, pair(1, 0), BPF_EXIST],
      [dm, 'update', 4, pair(1, 0), BPF_ANY],
      [dm, 'update', 1, pair(0, 5), BPF_ANY],
      [dm, 'update', 2, pair(0, 0), BPF_ANY],
      [dm, 'lookup', 2, pair(0, 0), 0],
      [dm, 'lookup', 0, pair(0, 0), 0],
      [dm, 'delete', 3, pair(0, 0), 0],
      [dm, 'delete', 4, pair(0, 0), 0],
      [dh, 'update', 7, u32(1), BPF_EXIST],
      [dh, 'update', 7, u32(1), BPF_NOEXIST],
      [dh, 'update', 8, u32(0), BPF_ANY],
      [dh, 'update', 8, u32(1), BPF_ANY],
      [dh, 'update', 9, u32(1), BPF_ANY],
      [dh, 'delete', 9, u32(0), 0],
      [dh, 'delete', 8, u32(0), 0],
      [cm, 'update', 0, u32(16385), BPF_ANY],
      [cm, 'update', 0, u32(64), BPF_NOEXIST],
      [cm, 'update', 0, u32(64), BPF_ANY],
      [cm, 'update', e.cpus, u32(64), BPF_ANY],
      [cm, 'update', 4, u32(64), BPF_ANY],
      [cm, 'lookup', 0, u32(0), 0],
      [cm, 'update', 0, u32(0), BPF_ANY],
      [cm, 'lookup', 0, u32(0), 0],
      [cm, 'delete', 1, u32(0), 0],
      [cm, 'delete', 4, u32(0), 0],
    );
    const maps = new Map<MapDef, [BpfMap, KernelMap]>();
    for (const d of [dm, dh, cm]) maps.set(d, [createMap(d, { cpus: e.cpus }), KernelMap.create(e, d) as KernelMap]);
    script.forEach(([d, op, k, v, f], i) => {
      const [ours, theirs] = maps.get(d)!;
      const key = u32(k);
      const got = op === 'update' ? errnoName(ours.update(key, v, f)) : op === 'delete' ? errnoName(ours.delete(key)) : show(ours.lookupSys(key));
      const want = op === 'update' ? errnoName(theirs.update(key, v, f)) : op === 'delete' ? errnoName(theirs.delete(key)) : show(theirs.lookup(key));
      expect([i, d.name, op, k, toHex(v), got]).toEqual([i, d.name, op, k, toHex(v), want]);
    });
  });

  it('bloom_filter: the same false positives as a BPF_F_ZERO_SEED kernel map', () => {
    if (!PYTHON) {
      console.log('maps/kernel.test.ts: no python3 to look values up in a kernel bloom filter; skipped');
      return;
    }
    for (const [valueSize, entries] of [
      [4, 20],
      [6, 30],
      [16, 10],
    ]) {
      const d = def('bloom_filter', { keySize: 0, valueSize, maxEntries: entries, flags: 64 });
      const ours = createMap(d) as BloomFilterMap;
      const theirs = KernelMap.create(e, d) as KernelMap;
      const rand = lcg(valueSize);
      const value = () => Uint8Array.from({ length: valueSize }, () => rand(256));
      // Four times max_entries values (a bloom filter takes any number) make false positives common.
      const pushed = Array.from({ length: 4 * entries }, value);
      const probes = Array.from({ length: 400 }, value);
      for (const v of pushed) ours.push(v, BPF_ANY);
      const r = run(PYTHON, ['-c', BLOOM_SCRIPT, theirs.pin, pushed.map(toHex).join(','), [...pushed, ...probes].map(toHex).join(',')]);
      expect(r.err).toBe('');
      const kernel = r.out.trim().split(' ').map(Number);
      const mine = [...pushed, ...probes].map((v) => ours.peek(v));
      expect(mine).toEqual(kernel);
      // Some probes are false positives, or the test would not tell the hashes apart.
      expect(mine.slice(pushed.length).filter((x) => x === 0).length).toBeGreaterThan(0);
    }
  });

  it('refuses the definitions BPF_MAP_CREATE refuses, with the same errno', () => {
    const definitions: MapDef[] = [
      def('array', { keySize: 8 }),
      def('array', { maxEntries: 0 }),
      def('hash', { keySize: 0 }),
      def('hash', { flags: 2 }),
      def('lru_hash', { flags: 1 }),
      def('percpu_array', { valueSize: 40000 }),
      def('lpm_trie', { keySize: 8 }),
      def('lpm_trie', { keySize: 4, flags: 1 }),
      def('queue'),
      def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 6000 }),
      def('ringbuf', { keySize: 0, valueSize: 0, maxEntries: 2048 }),
      def('devmap', { valueSize: 6 }),
      def('xskmap', { valueSize: 8 }),
      def('bloom_filter', { keySize: 4 }),
      // Values over KMALLOC_MAX_SIZE (4 MiB): arrays allow them (up to INT_MAX), others do not.
      def('array', { valueSize: 5_000_000, maxEntries: 1 }),
      def('queue', { keySize: 0, valueSize: 5_000_000, maxEntries: 1 }),
      def('hash', { valueSize: 5_000_000, maxEntries: 1 }),
    ];
    for (const d of definitions) {
      let mine = 0;
      try {
        createMap(d, { cpus: e.cpus });
      } catch (err) {
        if (!(err instanceof MapCreateError)) throw err;
        mine = err.errno;
      }
      const theirs = KernelMap.create(e, d);
      expect([d.name, d.keySize, d.valueSize, d.maxEntries, d.flags, errnoName(mine)]).toEqual([
        d.name,
        d.keySize,
        d.valueSize,
        d.maxEntries,
        d.flags,
        errnoName(typeof theirs === 'number' ? theirs : 0),
      ]);
    }
  });
});
