// Ring buffer and perf event samples: what reaches the run's output and the maps, and what
// happens to programs the verifier would refuse (a sample never submitted, a sample written
// after submission). Return values are compared with the kernel in kernel.test.ts.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { RingbufMap } from '../../maps/ringbuf.js';
import { PerfEventArrayMap } from '../../maps/fd_maps.js';
import { Session } from '../session.js';

function session(obj: string, cpus = 1): Session {
  const file = fileURLToPath(new URL(`./fixtures/${obj}`, import.meta.url));
  const o = loadObject(readFileSync(file), file);
  return new Session(o.programs, o.maps, { cpus });
}

const pkt = (op: number, arg = 0, len = 40) => {
  const p = Uint8Array.from({ length: len }, (_, i) => (i * 7) & 0xff);
  p.set([op, arg], 14);
  return p;
};

describe('bpf_ringbuf_reserve / submit / discard / output', () => {
  it('a submitted sample is an output event and what a consumer reads; a discarded one is neither', () => {
    const s = session('output.o');
    const ring = s.maps.find((m) => m.name === 'ring') as RingbufMap;
    const out = s.run('xdp_output', { packet: pkt(0, 9) });
    expect(out.retval).toBe(0);
    expect(out.output).toHaveLength(1);
    const ev = out.output[0]!;
    expect(ev.kind).toBe('ringbuf');
    expect(ev.map).toBe('ring');
    // struct sample { u32 seq; u32 len; u8 head[8]; }
    const data = ev.data!;
    expect(new DataView(data.buffer, data.byteOffset).getUint32(0, true)).toBe(9);
    expect(new DataView(data.buffer, data.byteOffset).getUint32(4, true)).toBe(40);
    expect(Array.from(data.subarray(8, 16))).toEqual(Array.from(pkt(0, 9).subarray(0, 8)));
    expect(ev.step).toBeGreaterThan(0);

    expect(s.run('xdp_output', { packet: pkt(1) }).output).toHaveLength(0);
    const third = s.run('xdp_output', { packet: pkt(2) });
    expect(third.output.map((e) => Array.from(e.data!))).toEqual([[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]]);
    // The consumer sees the submitted sample and the output, not the discarded one.
    expect(ring.consume().map((d) => d.length)).toEqual([16, 8]);
  });

  it('reports the ring positions through bpf_ringbuf_query and fails reservations when full', () => {
    const s = session('output.o');
    expect(s.run('xdp_output', { packet: pkt(3, 1) }).retval).toBe(4096); // BPF_RB_RING_SIZE
    s.run('xdp_output', { packet: pkt(0) });
    // A 16-byte sample takes 24 bytes with its header.
    expect(s.run('xdp_output', { packet: pkt(3, 0) }).retval).toBe(24); // BPF_RB_AVAIL_DATA
    expect(s.run('xdp_output', { packet: pkt(3, 3) }).retval).toBe(24); // BPF_RB_PROD_POS
    expect(s.run('xdp_output', { packet: pkt(3, 2) }).retval).toBe(0); // BPF_RB_CONS_POS
    // 4096 bytes hold 170 records of 24 bytes but the producer may not catch up with the consumer.
    const filled = s.run('xdp_output', { packet: pkt(7) });
    expect(filled.retval).toBe(169);
    expect(filled.output).toHaveLength(169);
    expect(s.run('xdp_output', { packet: pkt(2) }).retval >>> 0).toBe(2 ** 32 - 11); // -EAGAIN
  });

  it('refuses flags, oversized samples and unknown output flags as the kernel does', () => {
    const s = session('output.o');
    expect(s.run('xdp_output', { packet: pkt(4) }).retval >>> 0).toBe(2 ** 32 - 22);
  });

  it('discards a sample never submitted at the end of the run, with a warning', () => {
    const s = session('faulty.o');
    const ring = s.maps.find((m) => m.name === 'ring') as RingbufMap;
    const out = s.run('leak_sample', { packet: pkt(0) });
    expect(out.fault).toBeUndefined();
    expect(out.warnings.map((w) => w.message).join('\n')).toMatch(/a 4-byte sample reserved in ring buffer 'ring' was never submitted or discarded \(the verifier refuses programs that leak a reservation\); Rewind discarded it/);
    expect(out.output).toHaveLength(0);
    // The ring is not blocked: the record is discarded and a consumer skips it.
    expect(ring.consume()).toEqual([]);
    expect(ring.consumerPos).toBe(ring.producerPos);
  });

  it('faults on a write through a sample pointer after the sample was submitted', () => {
    const s = session('faulty.o');
    const out = s.run('use_after_submit', { packet: pkt(0) });
    expect(out.fault?.message).toMatch(/write of 4 bytes at ringbuf\(ring\)\+0, ring buffer sample \(submitted\) is read-only/);
    expect(out.output).toHaveLength(1);
  });
});

describe('bpf_perf_event_output', () => {
  it('appends the first bytes of the packet the flags ask for, on the current CPU', () => {
    const s = session('output.o', 2);
    s.cpu = 1;
    const out = s.run('xdp_output', { packet: pkt(5) });
    expect(out.retval).toBe(0);
    expect(out.output).toHaveLength(1);
    const ev = out.output[0]!;
    expect(ev).toMatchObject({ kind: 'perf', map: 'events', cpu: 1 });
    expect(Array.from(ev.data!)).toEqual([0x01, 0xef, 0xcd, 0xab, ...pkt(5).subarray(0, 16)]);
    const events = s.maps.find((m) => m.name === 'events') as PerfEventArrayMap;
    expect(events.samples.map((x) => x.index)).toEqual([1]);
  });

  it('returns -EOPNOTSUPP for another CPU\'s event, -EFAULT for more packet than there is, -EINVAL for unknown flags', () => {
    const s = session('output.o', 2);
    // The program returns -r of its three calls in three bytes.
    expect(s.run('xdp_output', { packet: pkt(6, 1) }).retval).toBe(95 | (14 << 8) | (22 << 16));
    expect(s.run('xdp_output', { packet: pkt(6, 0) }).output).toHaveLength(1);
  });
});
