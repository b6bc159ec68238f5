// Session.run's options: outcomes without copies, and the session's own options kept beside a caller's.

import { describe, expect, it } from 'vitest';
import { fromInsns } from '../isa.js';
import type { Program } from '../program.js';
import { Session } from './session.js';

// if (data + 1 <= data_end) *(u8 *)data = 0xab; return XDP_TX;
const code = fromInsns([
  { op: 0x61, dst: 2, src: 1, off: 0, imm: 0 }, // r2 = ctx->data
  { op: 0x61, dst: 3, src: 1, off: 4, imm: 0 }, // r3 = ctx->data_end
  { op: 0xbf, dst: 4, src: 2, off: 0, imm: 0 }, // r4 = r2
  { op: 0x07, dst: 4, src: 0, off: 0, imm: 1 }, // r4 += 1
  { op: 0x2d, dst: 4, src: 3, off: 1, imm: 0 }, // if r4 > r3 goto +1
  { op: 0x72, dst: 2, src: 0, off: 0, imm: 0xab }, // *(u8 *)(r2 + 0) = 0xab
  { op: 0xb7, dst: 0, src: 0, off: 0, imm: 3 }, // r0 = XDP_TX
  { op: 0x95, dst: 0, src: 0, off: 0, imm: 0 }, // exit
]);
// if (data[0] == 1) bpf_xdp_adjust_head(ctx, 4); return data_end - data;
const shrink = fromInsns([
  { op: 0xbf, dst: 6, src: 1, off: 0, imm: 0 }, // r6 = r1
  { op: 0x61, dst: 2, src: 1, off: 0, imm: 0 }, // r2 = ctx->data
  { op: 0x61, dst: 3, src: 1, off: 4, imm: 0 }, // r3 = ctx->data_end
  { op: 0xbf, dst: 4, src: 2, off: 0, imm: 0 }, // r4 = r2
  { op: 0x07, dst: 4, src: 0, off: 0, imm: 1 }, // r4 += 1
  { op: 0x2d, dst: 4, src: 3, off: 5, imm: 0 }, // if r4 > r3 goto 11
  { op: 0x71, dst: 5, src: 2, off: 0, imm: 0 }, // r5 = *(u8 *)(r2 + 0)
  { op: 0x55, dst: 5, src: 0, off: 3, imm: 1 }, // if r5 != 1 goto 11
  { op: 0xbf, dst: 1, src: 6, off: 0, imm: 0 }, // r1 = r6
  { op: 0xb7, dst: 2, src: 0, off: 0, imm: 4 }, // r2 = 4
  { op: 0x85, dst: 0, src: 0, off: 0, imm: 44 }, // call bpf_xdp_adjust_head
  { op: 0x61, dst: 1, src: 6, off: 0, imm: 0 }, // r1 = ctx->data
  { op: 0x61, dst: 0, src: 6, off: 4, imm: 0 }, // r0 = ctx->data_end
  { op: 0x1f, dst: 0, src: 1, off: 0, imm: 0 }, // r0 -= r1
  { op: 0x95, dst: 0, src: 0, off: 0, imm: 0 }, // exit
]);
// return ctx->ingress_ifindex;
const ifindex = fromInsns([
  { op: 0x61, dst: 0, src: 1, off: 12, imm: 0 },
  { op: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
]);
const programs: Program[] = [
  { name: 'mark', type: 'xdp', code, funcs: [{ name: 'mark', start: 0, end: code.length }], maps: [] },
  { name: 'shrink', type: 'xdp', code: shrink, funcs: [{ name: 'shrink', start: 0, end: shrink.length }], maps: [] },
  { name: 'ifindex', type: 'xdp', code: ifindex, funcs: [{ name: 'ifindex', start: 0, end: ifindex.length }], maps: [] },
];

describe('Session.run options', () => {
  it('leaves the packet and ctx copies out with copies: false, and later runs still copy them', () => {
    const s = new Session(programs, []);
    const bare = s.run('mark', { packet: new Uint8Array([1, 2, 3]) }, { copies: false });
    expect(bare).toMatchObject({ verdict: 'XDP_TX', steps: 8 });
    expect(bare.packet).toBeUndefined();
    expect(bare.ctx).toBeUndefined();
    expect(bare.metadata).toBeUndefined();
    const full = s.run('mark', { packet: new Uint8Array([4, 5]) });
    expect(full.verdict).toBe('XDP_TX');
    expect([...full.packet!]).toEqual([0xab, 5]);
    // struct xdp_md: ingress_ifindex 1 (the loopback device without ctx_in), pointers read as 0.
    expect(full.ctx!.length).toBe(24);
    expect(new DataView(full.ctx!.buffer, full.ctx!.byteOffset).getUint32(12, true)).toBe(1);
  });

  it("keeps the session's maxSteps when a run gives options of its own", () => {
    const s = new Session(programs, [], { maxSteps: 3 });
    const out = s.run('mark', { packet: new Uint8Array(4) }, { copies: false });
    expect(out.verdict).toBe('fault');
    expect(out.steps).toBeLessThanOrEqual(3);
    expect(s.run('mark', { packet: new Uint8Array(4) }, { maxSteps: 100, copies: false }).verdict).toBe('XDP_TX');
  });

  it('starts every packet at the headroom, also the next one of the same size after a run moved data', () => {
    const s = new Session(programs, []);
    const pkt = (first: number) => new Uint8Array(20).fill(7).fill(first, 0, 1);
    const lengths = [1, 0, 0, 1, 1, 0].map((first) => {
      const out = s.run('shrink', { packet: pkt(first) });
      // The packet after the run: what adjust_head left between data and data_end.
      expect(out.packet!.length).toBe(out.retval);
      return out.retval;
    });
    expect(lengths).toEqual([16, 20, 20, 16, 16, 20]);
    expect([...s.run('mark', { packet: new Uint8Array(20) }).packet!.subarray(0, 2)]).toEqual([0xab, 0]);
  });

  it('gives runs without ctx_in the loopback device and the packet bounds, between runs with ctx fields', () => {
    const s = new Session(programs, []);
    const ctxWord = (c: Uint8Array, off: number) => new DataView(c.buffer, c.byteOffset).getUint32(off, true);
    const runs: [number, Record<string, number> | undefined][] = [[20, undefined], [30, undefined], [20, { ingress_ifindex: 5 }], [40, undefined], [40, undefined]];
    const seen = runs.map(([len, ctx]) => {
      const out = s.run('ifindex', { packet: new Uint8Array(len), ctx });
      // xdp_md after the run: data_end is the packet's length, as the kernel's test run writes ctx_out.
      expect(ctxWord(out.ctx!, 4)).toBe(len);
      return [out.retval, ctxWord(out.ctx!, 12)];
    });
    expect(seen).toEqual([[1, 1], [1, 1], [5, 5], [1, 1], [1, 1]]);
  });
});
