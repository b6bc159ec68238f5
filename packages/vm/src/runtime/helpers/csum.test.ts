// The checksum arithmetic against RFC 1071's one's complement sum (packet/checksum.ts), and the
// checksum helpers keeping real packets' checksums valid (packet/decode.ts verifies them).
// Bit-exact agreement with the kernel is in kernel.test.ts.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { onesComplementSum } from '../../packet/checksum.js';
import { ethernet, ipv4, udp } from '../../packet/build.js';
import { verifyChecksums } from '../../packet/decode.js';
import { Session } from '../session.js';
import { csumAdd, csumDiff, csumFold, csumFrom32to16, csumPartial, csumReplace2, csumReplace4, csumReplaceByDiff, csumSub } from './csum.js';

const swab16 = (v: number) => ((v & 0xff) << 8) | (v >>> 8);

function random(n: number, seed: number): Uint8Array {
  let x = seed | 1;
  return Uint8Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  });
}

describe('one\'s complement arithmetic', () => {
  it('csum_partial folded to 16 bits is the RFC 1071 sum of the bytes (read little-endian)', () => {
    for (let n = 0; n < 300; n += 7) {
      const b = random(n, n + 1);
      // An odd last byte is the low half of a little-endian word; RFC 1071 pads it on the right.
      const rfc = onesComplementSum(b);
      const expected = n === 0 ? 0 : swab16(rfc);
      expect(csumFrom32to16(csumPartial(b, 0)), `length ${n}`).toBe(expected);
    }
  });

  it('a seed adds into the sum; all-zero data keeps zero as 0, any other zero sum is 0xffff', () => {
    expect(csumPartial(new Uint8Array(40), 0)).toBe(0);
    expect(csumFrom32to16(csumPartial(Uint8Array.of(0xff, 0xff), 0))).toBe(0xffff);
    const b = random(33, 9);
    expect(csumFrom32to16(csumPartial(b, 0x12345678))).toBe(csumFrom32to16(csumAdd(csumPartial(b, 0), 0x12345678)));
  });

  it('csum_partial is x86-64\'s 64-bit end-around-carry sum, computed here without BigInt', () => {
    // arch/x86/lib/csum-partial_64.c as 64-bit arithmetic: add little-endian u64 words (the tail
    // zero-padded) with end-around carry, then take the high half of t + ror64(t, 32).
    const MASK64 = (1n << 64n) - 1n;
    const reference = (b: Uint8Array, seed: number) => {
      let t = BigInt(seed >>> 0);
      for (let i = 0; i < b.length; i += 8) {
        let w = 0n;
        for (let k = Math.min(b.length, i + 8) - 1; k >= i; k--) w = (w << 8n) | BigInt(b[k]!);
        t += w;
        if (t > MASK64) t = (t & MASK64) + 1n;
      }
      return Number((((t + (((t >> 32n) | (t << 32n)) & MASK64)) & MASK64) >> 32n));
    };
    for (let n = 0; n < 120; n++) {
      for (const seed of [0, 1, 0xffffffff, 0x80000000, 0x1234abcd]) {
        const b = random(n, n * 31 + seed);
        expect(csumPartial(b, seed), `length ${n}, seed ${seed}`).toBe(reference(b, seed));
      }
      // All-ones data drives every carry path (end-around carries on each word).
      const ones = new Uint8Array(n).fill(0xff);
      expect(csumPartial(ones, 0xffffffff), `ones, length ${n}`).toBe(reference(ones, 0xffffffff));
    }
  });

  it('csum_add/csum_sub carry around; csum_fold complements', () => {
    expect(csumAdd(0xffffffff, 1)).toBe(1);
    expect(csumAdd(0x80000000, 0x80000000)).toBe(1);
    expect(csumSub(5, 5)).toBe(0xffffffff);
    expect(csumFold(0)).toBe(0xffff);
    expect(csumFold(0x0001ffff)).toBe(0xfffe);
  });

  it('replacing a field keeps an RFC 1071 checksum valid, whichever way it is done', () => {
    const header = random(20, 77);
    header[10] = header[11] = 0;
    const fill = (h: Uint8Array) => {
      const c = ~onesComplementSum(h) & 0xffff;
      h[10] = c >> 8;
      h[11] = c & 0xff;
    };
    fill(header);
    const field = () => header[10]! | (header[11]! << 8);
    const set = (v: number) => {
      header[10] = v & 0xff;
      header[11] = v >>> 8;
    };
    const le32 = (off: number) => (header[off]! | (header[off + 1]! << 8) | (header[off + 2]! << 16) | (header[off + 3]! << 24)) >>> 0;
    // Replace the 4 bytes at 12 (csum_replace4), then 2 bytes at 8 (csum_replace2), then by a diff.
    const old4 = le32(12);
    header.set([1, 2, 3, 4], 12);
    set(csumReplace4(field(), old4, le32(12)));
    expect(onesComplementSum(header)).toBe(0xffff);
    const old2 = header[8]! | (header[9]! << 8);
    header.set([0x40, 0x11], 8);
    set(csumReplace2(field(), old2, header[8]! | (header[9]! << 8)));
    expect(onesComplementSum(header)).toBe(0xffff);
    const before = header.slice(16, 20);
    header.set([9, 9, 9, 9], 16);
    set(csumReplaceByDiff(field(), csumDiff(before, header.subarray(16, 20), 0)));
    expect(onesComplementSum(header)).toBe(0xffff);
  });
});

describe('the checksum helpers on packets', () => {
  const file = fileURLToPath(new URL('./fixtures/tc_csum.o', import.meta.url));
  const obj = loadObject(readFileSync(file), file);
  const session = new Session(obj.programs, obj.maps);
  const packet = (op: number, value: number, flags = 0) => {
    const cmd = new Uint8Array(24);
    cmd.set([op, value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24, flags]);
    return ethernet({ type: 0x0800, payload: ipv4({ src: '10.1.2.3', dst: '192.168.7.9', proto: 17, payload: udp({ sport: 4000, dport: 53, payload: cmd }) }) });
  };

  it('rewrites an address or a port with bpf_l3/l4_csum_replace and the packet still checks', () => {
    for (const [op, value] of [[0, 0x0100000a], [1, 0x3500], [2, 0x04030201], [3, 0x1140]] as const) {
      const out = session.run('tc_csum', { packet: packet(op, value) });
      expect(out.retval & 0xffffff, `op ${op}`).toBe(0);
      const checks = verifyChecksums(out.packet!);
      expect(checks.length, `op ${op}`).toBeGreaterThan(0);
      for (const c of checks) expect(c.ok, `op ${op}: ${c.layer}`).toBe(true);
    }
  });

  it('returns -EFAULT for odd or out-of-range offsets and -EINVAL for bad flags or a `from` with a diff', () => {
    const out = session.run('tc_csum', { packet: packet(4, 0) });
    // The three low bytes: -EFAULT for the odd offset, -EINVAL for from != 0 with a diff, -EINVAL for size 3.
    expect(out.retval & 0xffffff).toBe(14 | (22 << 8) | (22 << 16));
  });
});
