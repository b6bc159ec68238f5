// Frame headers and metadata are "plain" MessagePack: nil, booleans, integers, floats, str,
// bin, arrays and maps with str keys. No extension types (msgpackr's records, timestamps,
// typed-array tags), so any MessagePack library reads them.
import { Packr, Unpackr } from 'msgpackr';
import { MAX_DEPTH } from './format.js';

export type PlainValue = null | boolean | number | bigint | string | Uint8Array | readonly PlainValue[] | PlainMap;
export interface PlainMap {
  readonly [key: string]: PlainValue;
}

// variableMapSize: fixmap for small maps (msgpackr otherwise always writes map 16).
const packr = new Packr({ useRecords: false, variableMapSize: true });
// int64AsType 'auto' (in msgpackr's unpack.js, missing from its types): 64-bit integers come
// back as numbers when they are safe integers, as BigInts otherwise.
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: true,
  int64AsType: 'auto' as 'bigint',
});

const INT64_MIN = -(2n ** 63n);
const UINT64_END = 2n ** 64n;

/** A plain value is not allowed: `where` names it (`meta.program.name`). */
export class NotPlainError extends Error {
  override name = 'NotPlainError';
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) return `a ${value.constructor?.name ?? 'null-prototype object'}`;
  return `a ${typeof value}`;
}

// Copies `value`, checking it is plain and turning integers that msgpackr would write as
// float 64 (outside int 32 and uint 32) into BigInts, which it writes as int 64.
function normalize(value: unknown, where: string, depth: number): unknown {
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isSafeInteger(value) && (value < -0x8000_0000 || value > 0xffff_ffff) ? BigInt(value) : value;
    case 'bigint':
      if (value < INT64_MIN || value >= UINT64_END) throw new NotPlainError(`${where}: ${value} does not fit in 64 bits`);
      return value;
    case 'object': {
      if (value === null || value instanceof Uint8Array) return value;
      if (depth >= MAX_DEPTH) throw new NotPlainError(`${where}: nested more than ${MAX_DEPTH} deep`);
      if (Array.isArray(value)) return value.map((v, i) => normalize(v, `${where}[${i}]`, depth + 1));
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) break;
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(value)) {
        // msgpackr's decoder renames __proto__ (to keep prototypes safe): it would not round-trip.
        if (key === '__proto__') throw new NotPlainError(`${where}: the key '__proto__' cannot be stored`);
        out[key] = normalize(v, `${where}.${key}`, depth + 1);
      }
      return out;
    }
  }
  throw new NotPlainError(
    `${where} is ${describe(value)}; a trace stores only null, booleans, numbers, bigints, strings, Uint8Arrays, arrays and plain objects`,
  );
}

/** Thrown by `fast` and the payload encoder when a value needs `normalize`'s full check (and its message). */
export const NOT_FAST = Symbol('not plain');

// normalize without naming where each value is: the common case, for a recorder's payloads.
// Anything it does not accept goes through normalize again, for the error that names it.
export function fast(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isSafeInteger(value) && (value < -0x8000_0000 || value > 0xffff_ffff) ? BigInt(value) : value;
    case 'bigint':
      if (value < INT64_MIN || value >= UINT64_END) throw NOT_FAST;
      return value;
    case 'object': {
      if (value === null || value instanceof Uint8Array) return value;
      if (depth >= MAX_DEPTH) throw NOT_FAST;
      // Copied only where an integer changed below: a recorder's payloads are usually plain as they are.
      if (Array.isArray(value)) {
        let out: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const x = fast(value[i], depth + 1);
          if (x !== value[i]) (out ??= value.slice())[i] = x;
        }
        return out ?? value;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw NOT_FAST;
      let out: Record<string, unknown> | undefined;
      for (const key in value) {
        if (key === '__proto__') throw NOT_FAST;
        const v = (value as Record<string, unknown>)[key];
        const x = fast(v, depth + 1);
        if (x !== v) (out ??= { ...value })[key] = x;
      }
      return out ?? value;
    }
  }
  throw NOT_FAST;
}

/** Encodes a plain map as MessagePack (a fresh copy), or throws NotPlainError naming the bad entry. */
export function packPlainMap(map: unknown, where: string): Uint8Array {
  const packed = packPlainView(map, where);
  // A plain Uint8Array copy (slice on msgpackr's Buffer goes through its species constructor, several times slower).
  const out = new Uint8Array(packed.length);
  out.set(packed);
  return out;
}

/**
 * packPlainMap without the copy: a view of msgpackr's buffer, for bytes the caller copies
 * before it keeps them (the writer copies payloads and headers into its own buffers). Later
 * packs never write over it (msgpackr moves on, or on to a new buffer).
 */
export function packPlainView(map: unknown, where: string): Uint8Array {
  if (typeof map !== 'object' || map === null || Array.isArray(map) || map instanceof Uint8Array) {
    throw new NotPlainError(`${where} must be a plain object, not ${Array.isArray(map) ? 'an array' : describe(map)}`);
  }
  let plain: unknown;
  try {
    plain = fast(map);
  } catch (e) {
    if (e !== NOT_FAST) throw e;
    plain = normalize(map, where, 0);
  }
  return packr.pack(plain);
}

/**
 * Decodes one plain value. The caller has checked the bytes hold exactly one well-formed plain
 * value (decode.ts's skipPlainValue), so msgpackr never sees an extension type or a length
 * that runs past the data.
 */
export function unpackPlain(bytes: Uint8Array): PlainValue {
  return unpackr.unpack(bytes) as PlainValue;
}
