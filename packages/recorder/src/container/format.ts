// Constants of the .rwt container (FORMAT.md, "Container"). A trace is a sequence of top-level
// MessagePack values ("frames"); every frame but the trailer ends with a CRC-32 of its own bytes.
import { createRequire } from 'node:module';

/** Value of the header frame's `magic` entry. */
export const MAGIC = 'rewind-trace';

/** The container format version this Rewind writes. */
export const FORMAT_VERSION = 1;

/** The oldest format version this Rewind reads (it reads FORMAT_VERSION too, and all between). */
export const OLDEST_READABLE_VERSION = 1;

/** This Rewind's version, from the recorder package's package.json (../../ from src/ and dist/). */
export const REWIND_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Default `tool` entry of the header frame. */
export const TOOL = `rewind ${REWIND_VERSION}`;

/** Frame kinds the container writes itself; `append` refuses them. */
export const RESERVED_KINDS: ReadonlySet<string> = new Set(['header', 'end', 'index', 'trailer']);

/** Kinds callers may append: short lowercase names that read well in error messages. */
export const KIND_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Largest encoded frame header map `h`. Headers are decoded for every frame when a trace is
 * opened, so they are meant to be small; bulk data belongs in the payload `d`.
 */
export const MAX_HEADER_BYTES = 16 << 20;

/** Deepest nesting of arrays and maps inside a header, bounding recursion in both decoders. */
export const MAX_DEPTH = 32;

/** Largest payload: what a MessagePack bin 32 can hold. */
export const MAX_PAYLOAD_BYTES = 0xffff_ffff;

/**
 * Every frame ends with the entry `c` and its uint 32: a1 63 ce xx xx xx xx. The CRC covers all
 * the frame's bytes before these seven.
 */
export const CRC_ENTRY_BYTES = 7;

/**
 * The trailer, a fixed 33-byte map at the very end of a closed trace:
 *   83                         fixmap, 3 entries
 *   a1 6b  a7 "trailer"        k: "trailer"
 *   a5 "index"  cf <8 bytes>   index: byte offset of the index frame, always uint 64
 *   a1 63  ce <4 bytes>        c: CRC-32 of the 26 bytes before the `c` entry
 */
export const TRAILER_BYTES = 33;
/** The constant first 19 bytes of the trailer, through the 0xcf of the index offset. */
export const TRAILER_PREFIX = Uint8Array.from([
  0x83, 0xa1, 0x6b, 0xa7, ...Buffer.from('trailer'), 0xa5, ...Buffer.from('index'), 0xcf,
]);
/** Offset of the `c` entry inside the trailer. */
export const TRAILER_CRC_AT = TRAILER_BYTES - CRC_ENTRY_BYTES;
