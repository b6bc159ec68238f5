import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE } from '../program.js';
import { createMap } from './create.js';
import type { MapMutation } from './map.js';
import { RingbufMap } from './ringbuf.js';
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  EAGAIN,
  EINVAL,
  ENOTSUPP,
} from './uapi.js';

function ring(size = 4096): RingbufMap {
  return createMap({ name: 'rb', type: BPF_MAP_TYPE.ringbuf, keySize: 0, valueSize: 0, maxEntries: size, flags: 0 }) as RingbufMap;
}

const hdrLen = (m: RingbufMap, sampleOff: number) => new DataView(m.dataBytes().buffer).getUint32(sampleOff - 8, true);

describe('ringbuf map', () => {
  it('reserves a record behind an 8-byte header marked busy, then submits it', () => {
    const m = ring();
    const off = m.reserve(5, 0);
    expect(off).toBe(8);
    expect(hdrLen(m, off)).toBe((5 | BPF_RINGBUF_BUSY_BIT) >>> 0);
    // pg_off: the record's page counted from the start of struct bpf_ringbuf (3 metadata pages).
    expect(new DataView(m.dataBytes().buffer).getUint32(4, true)).toBe(3);
    m.dataBytes().set([1, 2, 3, 4, 5], off);
    // Records are 8-byte aligned: 8 + 5 rounds up to 16.
    expect(m.query(BPF_RB_PROD_POS)).toBe(16);
    m.submit(off, 0);
    expect(hdrLen(m, off)).toBe(5);
    expect(m.samples).toEqual([new Uint8Array([1, 2, 3, 4, 5])]);
    expect(m.reserve(1, 0)).toBe(24);
  });

  it('marks a discarded record and leaves it out of the samples', () => {
    const m = ring();
    const off = m.reserve(4, 0);
    m.discard(off, 0);
    expect(hdrLen(m, off)).toBe((4 | BPF_RINGBUF_DISCARD_BIT) >>> 0);
    expect(m.samples).toEqual([]);
    expect(m.consume()).toEqual([]);
    expect(m.query(BPF_RB_CONS_POS)).toBe(16);
  });

  it('returns NULL for unknown flags and for records larger than the ring', () => {
    const m = ring();
    expect(m.reserve(8, 1)).toBe(-1);
    expect(m.reserve(4096 - 7, 0)).toBe(-1);
  });

  it('fills up: the producer may not get a whole ring ahead of the consumer', () => {
    const m = ring();
    // 4096 bytes hold 255 records of 16 bytes: the 256th would make the producer a full ring ahead.
    for (let i = 0; i < 255; i++) {
      const off = m.reserve(8, 0);
      expect(off).toBeGreaterThan(0);
      m.submit(off, 0);
    }
    expect(m.reserve(8, 0)).toBe(-1);
    expect(m.output(new Uint8Array(8), 0)).toBe(-EAGAIN);
    expect(m.query(BPF_RB_AVAIL_DATA)).toBe(255 * 16);
    // A consumer frees the space.
    expect(m.consume().length).toBe(255);
    expect(m.query(BPF_RB_AVAIL_DATA)).toBe(0);
    expect(m.reserve(8, 0)).toBeGreaterThan(0);
  });

  it('counts records still reserved (not yet committed) against the space', () => {
    const m = ring();
    const first = m.reserve(2000, 0);
    const second = m.reserve(2000, 0);
    expect(second).toBeGreaterThan(first);
    m.submit(second, 0);
    // The consumer stops at the busy first record.
    expect(m.consume()).toEqual([]);
    expect(m.reserve(100, 0)).toBe(-1);
    m.submit(first, 0);
    expect(m.consume().map((s) => s.length)).toEqual([2000, 2000]);
  });

  it('writes a record that wraps past the end through one contiguous pointer', () => {
    const m = ring();
    for (let i = 0; i < 3; i++) m.submit(m.reserve(1000, 0), 0);
    m.consume();
    const off = m.reserve(1200, 0);
    // The record starts at 3024 and ends past 4096: its tail is in the mirrored upper half.
    expect(off).toBe(3032);
    const data = m.dataBytes();
    for (let i = 0; i < 1200; i++) data[off + i] = i & 0xff;
    m.submit(off, 0);
    const expected = Uint8Array.from({ length: 1200 }, (_, i) => i & 0xff);
    expect(m.samples[3]).toEqual(expected);
    expect(m.consume()).toEqual([expected]);
    // Folded back into the start of the ring, where the kernel's second mapping would have put it.
    expect(data.subarray(0, 1200 - (4096 - 3032))).toEqual(expected.subarray(4096 - 3032));
  });

  it('outputs a copy in one call; refuses unknown flags', () => {
    const m = ring();
    expect(m.output(new Uint8Array([7, 7]), 0)).toBe(0);
    expect(m.output(new Uint8Array([7]), 4)).toBe(-EINVAL);
    expect(m.samples).toEqual([new Uint8Array([7, 7])]);
  });

  it('answers queries', () => {
    const m = ring(8192);
    m.reserve(1, 0);
    expect(m.query(BPF_RB_RING_SIZE)).toBe(8192);
    expect(m.query(BPF_RB_PROD_POS)).toBe(16);
    expect(m.query(BPF_RB_AVAIL_DATA)).toBe(16);
    expect(m.query(99)).toBe(0);
  });

  it('throws for a submit of an offset that holds no reserved record', () => {
    const m = ring();
    expect(() => m.submit(8, 0)).toThrow(/no reserved ring buffer record at data offset 8/);
  });

  it('has no elements for the syscall', () => {
    const m = ring();
    expect(m.lookupSys(new Uint8Array(0))).toBe(-ENOTSUPP);
    expect(m.update(new Uint8Array(0), new Uint8Array(0), 0)).toBe(-ENOTSUPP);
  });

  it('reports reserve, submit, discard and output', () => {
    const m = ring();
    const seen: MapMutation[] = [];
    m.onMutate = (ev) => seen.push(ev);
    m.submit(m.reserve(4, 0), 0);
    m.discard(m.reserve(4, 0), 0);
    m.output(new Uint8Array([1]), 0);
    expect(seen.map((e) => [e.op, e.offset])).toEqual([
      ['reserve', 0],
      ['submit', 0],
      ['reserve', 16],
      ['discard', 16],
      ['output', 32],
    ]);
  });

  it('clones independently', () => {
    const m = ring();
    const off = m.reserve(4, 0);
    const c = m.clone();
    m.submit(off, 0);
    expect(c.samples).toEqual([]);
    expect(c.consume()).toEqual([]);
    c.discard(off, 0);
    expect(m.samples.length).toBe(1);
  });
});
