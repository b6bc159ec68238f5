// Test support, not part of the VM: a direct interpreter of classic BPF with the kernel's
// semantics, to compare a translated program's verdict against. It follows the classic
// interpreter the kernel had before eBPF (sk_run_filter) and the loads of
// bpf_internal_load_pointer_neg_helper(): a load outside the packet ends the filter with 0,
// and so does division or modulo by X = 0.

import { BPF_ABS, BPF_ALU, BPF_IMM, BPF_IND, BPF_JMP, BPF_LD, BPF_LDX, BPF_MEM, BPF_ST, BPF_STX } from '../isa.js';
import { checkClassic } from './check.js';
import { BPF_LEN, BPF_MEMWORDS, BPF_MISC, BPF_MSH, BPF_RET, BPF_TAX, SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF, ancillaryName, type CbpfInsn } from './insn.js';

/** The skb metadata ancillary loads read; packet-derived defaults in brackets. */
export interface SkbMeta {
  /** skb->len [packet length]. */
  len?: number;
  /** skb->protocol in host order [the Ethernet type at bytes 12-13]. */
  protocol?: number;
  /** PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4 [0]. */
  pktType?: number;
  ifindex?: number;
  /** ARPHRD_* of the device [1, ARPHRD_ETHER]. */
  hatype?: number;
  mark?: number;
  queueMapping?: number;
  hash?: number;
  vlanTci?: number;
  vlanPresent?: boolean;
  /** Host order [0]. */
  vlanProto?: number;
  cpu?: number;
  random?: () => number;
  /** Where SKF_NET_OFF loads start [14, after the Ethernet header]. */
  networkOffset?: number;
}

/** Runs `insns` (validated like the kernel does) on `packet`; returns the filter's 32-bit result. */
export function referenceCbpfRun(insns: readonly CbpfInsn[], packet: Uint8Array, meta: SkbMeta = {}): number {
  checkClassic(insns);
  const len = packet.length;
  const mem = new Uint32Array(BPF_MEMWORDS);
  let A = 0;
  let X = 0;

  /** load_pointer(): k < 0 addresses the network or link header; undefined when out of bounds. */
  const load = (k: number, size: 1 | 2 | 4): number | undefined => {
    let at: number;
    if (k >= 0) at = k;
    else if (k >= SKF_NET_OFF) at = (meta.networkOffset ?? 14) + (k - SKF_NET_OFF);
    else if (k >= SKF_LL_OFF) at = k - SKF_LL_OFF;
    else return undefined;
    if (at < 0 || at + size > len) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = v * 256 + packet[at + i]!;
    return v;
  };

  const ancillary = (k: number): number => {
    const name = ancillaryName(k);
    switch (name) {
      case 'PROTOCOL':
        return meta.protocol ?? (len >= 14 ? (packet[12]! << 8) | packet[13]! : 0);
      case 'PKTTYPE':
        return meta.pktType ?? 0;
      case 'IFINDEX':
        return meta.ifindex ?? 0;
      case 'HATYPE':
        return meta.hatype ?? 1;
      case 'MARK':
        return meta.mark ?? 0;
      case 'QUEUE':
        return meta.queueMapping ?? 0;
      case 'RXHASH':
        return meta.hash ?? 0;
      case 'VLAN_TAG':
        return meta.vlanTci ?? 0;
      case 'VLAN_TAG_PRESENT':
        return meta.vlanPresent ? 1 : 0;
      case 'VLAN_TPID':
        return meta.vlanProto ?? 0;
      case 'CPU':
        return meta.cpu ?? 0;
      case 'RANDOM':
        return (meta.random ?? (() => 0))() >>> 0;
      case 'ALU_XOR_X':
        return (A ^ X) >>> 0;
      default:
        throw new Error(`referenceCbpfRun: ancillary load SKF_AD_OFF + ${k - SKF_AD_OFF} is not modelled`);
    }
  };

  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc]!;
    const ks = k | 0;
    switch (code & 0x07) {
      case BPF_RET:
        return (code & 0x18) === 0x10 ? A : k >>> 0;
      case BPF_LD: {
        const mode = code & 0xe0;
        const size = ([4, 2, 1] as const)[(code & 0x18) >> 3]!;
        if (mode === BPF_ABS && ks >= SKF_AD_OFF && ks < 0) A = ancillary(ks);
        else if (mode === BPF_ABS || mode === BPF_IND) {
          const v = load(mode === BPF_ABS ? ks : (X + k) | 0, size);
          if (v === undefined) return 0;
          A = v;
        } else if (mode === BPF_IMM) A = k >>> 0;
        else if (mode === BPF_MEM) A = mem[k]!;
        else if (mode === BPF_LEN) A = meta.len ?? len;
        break;
      }
      case BPF_LDX: {
        const mode = code & 0xe0;
        if (mode === BPF_IMM) X = k >>> 0;
        else if (mode === BPF_MEM) X = mem[k]!;
        else if (mode === BPF_LEN) X = meta.len ?? len;
        else if (mode === BPF_MSH) {
          const v = load(ks, 1);
          if (v === undefined) return 0;
          X = (v & 0xf) * 4;
        }
        break;
      }
      case BPF_ST:
        mem[k] = A;
        break;
      case BPF_STX:
        mem[k] = X;
        break;
      case BPF_ALU: {
        const src = code & 0x08 ? X : k >>> 0;
        switch (code & 0xf0) {
          case 0x00:
            A = (A + src) >>> 0;
            break;
          case 0x10:
            A = (A - src) >>> 0;
            break;
          case 0x20:
            A = Math.imul(A, src) >>> 0;
            break;
          case 0x30:
            if (src === 0) return 0;
            A = Math.floor(A / src) >>> 0;
            break;
          case 0x90:
            if (src === 0) return 0;
            A = A % src >>> 0;
            break;
          case 0x40:
            A = (A | src) >>> 0;
            break;
          case 0x50:
            A = (A & src) >>> 0;
            break;
          case 0xa0:
            A = (A ^ src) >>> 0;
            break;
          // Shift counts are taken mod 32, as x86 does and the kernel's JITs emit.
          case 0x60:
            A = (A << (src & 31)) >>> 0;
            break;
          case 0x70:
            A = A >>> (src & 31);
            break;
          case 0x80:
            A = -A >>> 0;
            break;
        }
        break;
      }
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += k;
          break;
        }
        const src = code & 0x08 ? X : k >>> 0;
        const taken = op === 0x10 ? A === src : op === 0x20 ? A > src : op === 0x30 ? A >= src : (A & src) !== 0;
        pc += taken ? jt : jf;
        break;
      }
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TAX) X = A;
        else A = X;
        break;
    }
  }
  // checkClassic() guarantees a ret at the end, and jumps only go forward.
  throw new Error('referenceCbpfRun: fell off the end of the filter');
}
