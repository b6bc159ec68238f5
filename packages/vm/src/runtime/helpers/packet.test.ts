// Packet helpers in the machine's memory: what the recorder is told, what the program sees after
// the packet moves, and the verifier's rules Rewind checks at run time (which program types
// have a helper, the context argument, packet memory only for pkt_access helpers).

import { describe, expect, it } from 'vitest';
import { assemble } from '../../asm/assemble.js';
import { Memory, type Region } from '../../engine/memory.js';
import { programFromBytecode } from '../../engine/vm.js';
import type { ProgType } from '../../program.js';
import { Session } from '../session.js';
import { createContext } from '../contexts.js';
import { PacketBuffer } from '../packet.js';

const session = (type: ProgType, text: string) => new Session([{ ...programFromBytecode(assemble(text), 'p'), type }], []);
const frame = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i + 1) & 0xff);

describe('packet memory', () => {
  it('bpf_xdp_adjust_head: the new bytes are readable through a reloaded data pointer, and reported', () => {
    // adjust_head(-4); r0 = *(u32 *)(data) of the reloaded data pointer
    const s = session('xdp', 'mov %r6, %r1\nmov %r2, -4\ncall 44\nldxw %r2, [%r6+0]\nstw [%r2+0], 0x11223344\nldxw %r0, [%r2+4]\nexit');
    const writes: { region: Region; offset: number; length: number }[] = [];
    s.machine.onWrite = (region, offset, bytes) => writes.push({ region, offset, length: bytes.length });
    const out = s.run('p', { packet: frame(20) });
    expect(out.fault).toBeUndefined();
    // The word after the 4 new bytes is the old first word, bytes 1..4.
    expect(out.retval).toBe(0x04030201);
    expect(Array.from(out.packet!.subarray(0, 8))).toEqual([0x44, 0x33, 0x22, 0x11, 1, 2, 3, 4]);
    // The helper reported the packet from the new data_meta on.
    expect(writes[0]).toMatchObject({ region: s.packet.region, offset: 256 - 4, length: 24 });
  });

  it('bpf_xdp_adjust_tail: grown bytes are zero and the old data_end no longer bounds loads', () => {
    const s = session('xdp', 'mov %r6, %r1\nmov %r2, 8\ncall 65\nldxw %r2, [%r6+0]\nldxdw %r0, [%r2+20]\nexit');
    const out = s.run('p', { packet: frame(24) });
    expect(out.r0).toBe(0x0000000018171615n); // bytes 21..24, then four zero bytes
    expect(out.packet!.length).toBe(32);
    // Without the helper the same load is out of bounds.
    expect(session('xdp', 'ldxw %r2, [%r1+0]\nldxdw %r0, [%r2+20]\nexit').run('p', { packet: frame(24) }).fault?.message).toMatch(/read of 8 bytes at pkt\+20, packet is 24 bytes/);
  });
});

describe('what the verifier would refuse', () => {
  it('a helper the program type does not have', () => {
    expect(session('socket', 'mov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\nmov %r5, 0\ncall 9\nexit').run('p', { packet: frame(60) }).fault?.message).toMatch(
      /bpf_skb_store_bytes: not available to socket programs \(the verifier refuses the call; it is for tc\)/,
    );
    expect(session('tc', 'mov %r2, 0\ncall 44\nexit').run('p', { packet: frame(60) }).fault?.message).toMatch(/bpf_xdp_adjust_head: not available to tc programs/);
  });

  it('a context argument that is not the context', () => {
    expect(session('xdp', 'mov %r1, %r10\nmov %r2, 0\ncall 44\nexit').run('p', { packet: frame(60) }).fault?.message).toMatch(
      /bpf_xdp_adjust_head: argument 1 \(r1\) must be the context pointer, it is stack\+0/,
    );
  });

  it('packet memory passed to a helper without pkt_access', () => {
    expect(session('xdp', 'ldxw %r1, [%r1+0]\nmov %r2, 4\nmov %r3, 0\ncall 182\nexit').run('p', { packet: frame(60) }).fault?.message).toMatch(
      /bpf_strncmp: argument 1 \(r1\) points into the packet \(pkt\+0\): helper access to the packet is not allowed/,
    );
  });
});

describe('context loads', () => {
  // r6 is the context as the program got it: its 4-byte loads read the machine's context table.
  // r7 is the same pointer reloaded from the stack, which the compiler cannot follow: its loads
  // take the slow path through the context's rules. r0 ORs together every difference between
  // the two, before and after the program changes the packet and the context.
  const compare = (offsets: number[]) => offsets.map((off) => `ldxw %r2, [%r6+${off}]\nldxdw %r7, [%r10-8]\nldxw %r3, [%r7+${off}]\nxor %r2, %r3\nor %r9, %r2`).join('\n');
  const program = (offsets: number[], change: string) => `
    mov %r6, %r1
    stxdw [%r10-8], %r1
    mov %r9, 0
    ${compare(offsets)}
    ${change}
    ${compare(offsets)}
    mov %r0, %r9
    exit`;
  /** Offsets of the context's 4-byte slots that loads read from the table. */
  const slotsOf = (type: ProgType) => {
    const mem = new Memory();
    const { slots } = createContext(mem, type, new PacketBuffer(mem, 4096, 256, mem.nextIndex()))!;
    return Array.from(slots.keys()).filter((k) => slots[k]).map((k) => 4 * k);
  };

  it('xdp: the table and the slow path agree after bpf_xdp_adjust_head, _meta and _tail', () => {
    const offsets = [0, 4, 8, 12, 16];
    const change = 'mov %r1, %r6\nmov %r2, 6\ncall 44\nmov %r1, %r6\nmov %r2, -8\ncall 54\nmov %r1, %r6\nmov %r2, -2\ncall 65';
    const s = session('xdp', program(offsets, change));
    expect(slotsOf('xdp')).toEqual(offsets);
    expect(s.program('p').compiled.source).toContain('CTXL[3]');
    for (const n of [60, 200]) expect(s.run('p', { packet: frame(n), ctx: { rx_queue_index: 0, ingress_ifindex: 1 } })).toMatchObject({ r0: 0n, fault: undefined });
  });

  it('tc: the table and the slow path agree after context stores and helpers that move the packet or set fields', () => {
    const change = [
      'stw [%r6+8], 0x5259', // mark
      'stb [%r6+49], 7', // cb[0], one byte
      'stw [%r6+44], 0x12345', // tc_index keeps 16 bits
      'mov %r1, %r6\nmov %r2, 0x77\ncall 48', // bpf_set_hash
      'mov %r1, %r6\nmov %r2, 40\nmov %r3, 0\ncall 38', // bpf_skb_change_tail
      'mov %r1, %r6\nmov %r2, 8\nmov %r3, 0\ncall 43', // bpf_skb_change_head
    ].join('\n');
    const offsets = slotsOf('tc');
    // Every u32 field tc programs may load: len, pkt_type ... data, data_end, data_meta, wire_len.
    expect(offsets).toEqual(expect.arrayContaining([0, 4, 8, 16, 48, 64, 68, 72, 76, 80, 140, 160]));
    const s = session('tc', program(offsets, change));
    for (const n of [60, 120]) expect(s.run('p', { packet: frame(n), ctx: { mark: 3, priority: 9 } })).toMatchObject({ r0: 0n, fault: undefined });
  });
});
