// The Internet checksum (RFC 1071) and the pseudo-headers TCP, UDP and ICMPv6 add to it
// (RFC 9293 section 3.1, RFC 768, RFC 8200 section 8.1).

/**
 * The one's complement sum of `bytes` read as big-endian 16-bit words, folded to 16 bits and
 * not complemented. `initial` is a previous folded sum (a pseudo-header's, or the sum of an
 * earlier chunk of even length) so sums can be chained; an odd final byte is padded with zero.
 */
export function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (even !== bytes.length) sum += bytes[even]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** RFC 1071: the complement of the one's complement sum. Zero when `bytes` holds a correct checksum. */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~onesComplementSum(bytes, initial) & 0xffff;
}

/** The folded sum of the IPv4 (12 bytes) or IPv6 (40 bytes) pseudo-header for an upper-layer checksum. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let sum = onesComplementSum(dst, onesComplementSum(src));
  if (src.length === 16) {
    // RFC 8200 8.1: 32-bit upper-layer length, then 24 zero bits and the next header.
    sum += Math.floor(length / 0x10000) + (length & 0xffff) + protocol;
  } else {
    sum += protocol + (length & 0xffff);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Where each upper-layer protocol keeps its checksum, and whether it covers a pseudo-header. */
export const CHECKSUM_OFFSET: Readonly<Record<number, { offset: number; pseudo: boolean }>> = {
  1: { offset: 2, pseudo: false }, // ICMP
  6: { offset: 16, pseudo: true }, // TCP
  17: { offset: 6, pseudo: true }, // UDP
  58: { offset: 2, pseudo: true }, // ICMPv6
};

/**
 * The checksum a header or segment should carry: computed over `bytes` with the 16-bit field
 * at `fieldOffset` taken as zero, on top of `initial` (a pseudo-header sum, or 0).
 */
export function expectedChecksum(bytes: Uint8Array, fieldOffset: number, initial = 0): number {
  let sum = onesComplementSum(bytes, initial);
  const field = (bytes[fieldOffset]! << 8) | bytes[fieldOffset + 1]!;
  // Subtracting in one's complement is adding the complement.
  sum += ~field & 0xffff;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The transport checksum for `segment` (TCP, UDP, ICMP or ICMPv6 as `protocol`), as it should be sent. */
export function transportChecksum(src: Uint8Array, dst: Uint8Array, protocol: number, segment: Uint8Array): number {
  const where = CHECKSUM_OFFSET[protocol];
  if (!where) throw new RangeError(`no transport checksum is defined for protocol ${protocol}`);
  const initial = where.pseudo ? pseudoHeaderSum(src, dst, protocol, segment.length) : 0;
  const sum = expectedChecksum(segment, where.offset, initial);
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "none").
  return protocol === 17 && sum === 0 ? 0xffff : sum;
}
