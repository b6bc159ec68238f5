// Opens a trace. A closed trace is opened from its end: the trailer points at the index, which
// lists every frame, so opening reads a few kilobytes whatever the file's size, and a frame's
// checksum is checked when its payload is read. A trace without a usable trailer (its
// recorder was killed) is scanned from the start instead, checking every frame's checksum,
// up to the first torn frame: that trace is `truncated`, and every complete frame in it reads.
import { fstatSync, openSync } from 'node:fs';
import { Cursor, type Identity, Malformed, OutOfData, type ParsedFrame, parseFrame, readIdentity, Window, checkCrc } from './decode.js';
import { TraceCorruptError, TraceError, TraceFormatError, TraceTruncatedError, TraceVersionError } from './errors.js';
import { FORMAT_VERSION, KIND_PATTERN, MAGIC, MAX_HEADER_BYTES, OLDEST_READABLE_VERSION, TOOL, TRAILER_BYTES, TRAILER_PREFIX } from './format.js';
import { type PlainMap, type PlainValue, unpackPlain } from './plain.js';
import { type ByteSource, FileSource, MemorySource } from './source.js';

/** One frame of the trace, as listed by the index (or found by the scan). */
export interface FrameInfo {
  readonly kind: string;
  /** Position in the trace: frames[n].number === n; the header frame is 0. */
  readonly number: number;
  /** Byte offset of the frame's first byte. */
  readonly offset: number;
  /** Bytes from the frame's first byte to the next frame. */
  readonly length: number;
  /** The small map the writer gave with the frame. */
  readonly header: PlainMap;
}

/** What the header frame says. */
export interface TraceHeader {
  /** Container format version of the file. */
  readonly version: number;
  /** The Rewind that wrote it (`rewind 0.1.0`). */
  readonly tool: string;
  /** When the recording started (ISO 8601). */
  readonly created: string;
  /** The writer's `meta`. */
  readonly meta: PlainMap;
}

export interface TraceReaderOptions {
  /** Scan every frame instead of trusting the index (to check a whole file, or to recover one). */
  readonly ignoreIndex?: boolean;
}

interface Layout {
  header: TraceHeader;
  frames: FrameInfo[];
  truncated: boolean;
  dataEnd: number;
  via: 'index' | 'scan';
}

// The smallest version-1 frame: 85, k, a one-letter kind, i, a fixint, h, {}, d, c4 00, c, ce + 4.
const MIN_FRAME_BYTES = 22;

export class TraceReader {
  /** What the header frame says. */
  readonly header: TraceHeader;
  /** Every complete frame, header frame first; frames[n].number === n. */
  readonly frames: readonly FrameInfo[];
  /** The file ends without its trailer (a recorder that was killed, or a copy cut short). */
  readonly truncated: boolean;
  /** Where the complete frames end: the file's size when not truncated. */
  readonly dataEnd: number;
  /** The file's size in bytes. */
  readonly size: number;
  /** 'index' when the frames came from the index, 'scan' when every frame was read to find them. */
  readonly via: 'index' | 'scan';
  /** The writer's final metadata (from its "end" frame), undefined when the trace lacks one. */
  readonly finalMeta: PlainMap | undefined;

  private readonly win: Window;
  private readonly byKind = new Map<string, FrameInfo[]>();

  private constructor(
    /** The file's path, or the name given to an in-memory trace. */
    readonly file: string,
    private readonly source: ByteSource,
    options: TraceReaderOptions,
  ) {
    this.win = new Window(source);
    this.size = source.end;
    const layout = openTrace(this.win, file, options);
    this.header = layout.header;
    this.frames = layout.frames;
    this.truncated = layout.truncated;
    this.dataEnd = layout.dataEnd;
    this.via = layout.via;
    this.finalMeta = this.frames.filter((f) => f.kind === 'end').pop()?.header;
  }

  /** Opens a trace file; throws a TraceError subclass naming the file for anything wrong. */
  static open(path: string, options: TraceReaderOptions = {}): TraceReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new TraceError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new TraceError(`${path}: not a regular file`, path);
      return new TraceReader(path, new FileSource(fd, stat.size), options);
    } catch (e) {
      new FileSource(fd, 0).close();
      throw e;
    }
  }

  /** Reads a trace held in memory; `name` stands for the file in messages. */
  static fromBytes(bytes: Uint8Array, name = '<memory>', options: TraceReaderOptions = {}): TraceReader {
    return new TraceReader(name, new MemorySource(bytes), options);
  }

  /** The frames of one kind, in order. */
  framesOfKind(kind: string): readonly FrameInfo[] {
    let list = this.byKind.get(kind);
    if (!list) this.byKind.set(kind, (list = this.frames.filter((f) => f.kind === kind)));
    return list;
  }

  /**
   * The last frame of `kind` whose header `field` is at most `value`, for example the keyframe
   * nearest before a step: lastAtOrBefore('keyframe', 'step', 123456). Binary search, for
   * fields that never decrease from one frame of the kind to the next; frames without a
   * numeric `field` are not candidates.
   */
  lastAtOrBefore(kind: string, field: string, value: number | bigint): FrameInfo | undefined {
    const list = this.framesOfKind(kind);
    const at = (i: number) => list[i].header[field];
    let lo = 0;
    let hi = list.length; // answer in [lo - 1, hi - 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      let probe = mid;
      while (probe < hi && !isNumeric(at(probe))) probe++;
      if (probe === hi) hi = mid;
      else if ((at(probe) as number | bigint) <= value) lo = probe + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0; i--) if (isNumeric(at(i))) return list[i];
    return undefined;
  }

  /** The payload of frame `n`, after checking the frame's checksum. */
  readPayload(n: number): Uint8Array {
    const f = this.frameAt(n);
    const bytes = new Uint8Array(f.length);
    if (this.source.read(bytes, f.offset) < f.length) {
      throw frameError(this.file, f.number, f.kind, f.header, f.offset, 'the file ends inside this frame (it shrank after it was opened)');
    }
    const win = new Window(new MemorySource(bytes, f.offset));
    const parsed = this.checkFrame(win, f);
    return bytes.subarray(parsed.payloadStart - f.offset, parsed.payloadStart - f.offset + parsed.payloadLength);
  }

  /** Checks every frame's structure and checksum; throws TraceCorruptError for the first bad one. */
  verify(): void {
    for (const f of this.frames) this.checkFrame(this.win, f);
  }

  close(): void {
    this.source.close();
  }

  private frameAt(n: number): FrameInfo {
    const f = Number.isInteger(n) ? this.frames[n] : undefined;
    if (!f) throw new TraceError(`${this.file}: no frame ${n} (the trace has frames 0-${this.frames.length - 1})`, this.file);
    return f;
  }

  private checkFrame(win: Window, f: FrameInfo): ParsedFrame {
    const fail = (what: string) => frameError(this.file, f.number, f.kind, f.header, f.offset, what);
    let parsed;
    try {
      parsed = parseFrame(new Cursor(win, f.offset, f.offset + f.length));
    } catch (e) {
      if (e instanceof Malformed) throw fail(malformedText(e, f.offset));
      if (e instanceof OutOfData) throw fail(`the frame runs past its ${f.length} bytes`);
      throw e;
    }
    if (parsed.type === 'trailer') throw fail('a trailer where the index says a frame is');
    if (parsed.end !== f.offset + f.length) throw fail(`the frame is ${parsed.end - f.offset} bytes, the index says ${f.length}`);
    if (!checkCrc(win, parsed)) throw fail('checksum mismatch');
    if (parsed.kind !== f.kind || parsed.number !== f.number) throw fail(`the frame says it is frame ${parsed.number} (${parsed.kind})`);
    return parsed;
  }
}

function isNumeric(v: PlainValue | undefined): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** `frame 17 (chunk, first=4096, last=8191)`: the header's first few scalar entries. */
function frameLabel(number: number | undefined, kind: string | undefined, header: PlainMap | undefined): string {
  if (number === undefined) return `${kind ?? 'a'} frame`;
  const parts = kind === undefined ? [] : [kind];
  for (const [key, value] of Object.entries(header ?? {})) {
    if (parts.length > 3) break;
    if (isNumeric(value) || (typeof value === 'string' && value.length <= 24)) parts.push(`${key}=${value}`);
  }
  return parts.length ? `frame ${number} (${parts.join(', ')})` : `frame ${number}`;
}

function frameError(file: string, number: number | undefined, kind: string | undefined, header: PlainMap | undefined, offset: number, what: string): TraceCorruptError {
  return new TraceCorruptError(`${file}: ${frameLabel(number, kind, header)} at byte ${offset}: ${what}`, file, offset, number, kind);
}

function trailerError(file: string, offset: number, what: string): TraceCorruptError {
  return new TraceCorruptError(`${file}: trailer at byte ${offset}: ${what}`, file, offset, undefined, 'trailer');
}

function malformedText(e: Malformed, frameStart: number): string {
  return e.at === frameStart ? e.message : `${e.message} (byte ${e.at})`;
}

// Control characters from a damaged or foreign file stay out of one-line messages.
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

function openTrace(win: Window, file: string, options: TraceReaderOptions): Layout {
  const size = win.end;
  if (size === 0) throw new TraceTruncatedError(`${file}: empty file (a recorder stopped before writing the trace header?)`, file);
  let id: Identity | undefined;
  try {
    id = readIdentity(new Cursor(win, 0));
  } catch (e) {
    if (e instanceof OutOfData) {
      if (!startsLikeTrace(win)) throw notATrace(file);
      throw new TraceTruncatedError(`${file}: ends after ${size} bytes, inside the trace header: nothing to replay`, file);
    }
    if (e instanceof Malformed) throw frameError(file, 0, 'header', undefined, 0, malformedText(e, 0));
    throw e;
  }
  if (!id) throw notATrace(file);
  if (id.version < OLDEST_READABLE_VERSION || id.version > FORMAT_VERSION) {
    // A damaged version byte is not a version: if the header frame has this version's layout,
    // its checksum tells.
    if (headerChecksumFails(win)) throw frameError(file, 0, 'header', undefined, 0, `checksum mismatch (it says format version ${id.version})`);
    const tool = printable(id.tool);
    const readable = `this Rewind (${TOOL}) reads format versions ${OLDEST_READABLE_VERSION}-${FORMAT_VERSION}`;
    const advice = id.version > FORMAT_VERSION ? `open it with ${tool} or later` : `open it with ${tool}, which wrote it`;
    throw new TraceVersionError(`${file}: format version ${id.version} (written by ${tool}); ${readable}: ${advice}`, file, id.version, id.tool);
  }
  // One reader per format version: a version bump adds a reader and keeps this one.
  return openVersion1(win, file, id, options);
}

function headerChecksumFails(win: Window): boolean {
  try {
    const f = parseFrame(new Cursor(win, 0));
    return !checkCrc(win, f);
  } catch (e) {
    if (e instanceof Malformed || e instanceof OutOfData) return false;
    throw e;
  }
}

/** Whether the file ends with a trailer whose checksum holds. */
function trailerHolds(win: Window): boolean {
  if (win.end < TRAILER_BYTES) return false;
  try {
    const t = parseFrame(new Cursor(win, win.end - TRAILER_BYTES));
    return t.type === 'trailer' && checkCrc(win, t);
  } catch (e) {
    if (e instanceof Malformed || e instanceof OutOfData) return false;
    throw e;
  }
}

function notATrace(file: string): TraceFormatError {
  return new TraceFormatError(`${file}: not a Rewind trace (it does not start with the '${MAGIC}' header)`, file);
}

/** Whether a file too short for the magic is a prefix of a header: fixmap, "magic", MAGIC. */
function startsLikeTrace(win: Window): boolean {
  const expected = Uint8Array.from([0x88, 0xa5, ...Buffer.from('magic'), 0xa0 | MAGIC.length, ...Buffer.from(MAGIC)]);
  const n = Math.min(win.end, expected.length);
  const got = win.view(0, n);
  for (let i = 0; i < n; i++) {
    const ok = i === 0 ? got[0] >= 0x83 && got[0] <= 0x8f : got[i] === expected[i];
    if (!ok) return false;
  }
  return true;
}

function openVersion1(win: Window, file: string, id: Identity, options: TraceReaderOptions): Layout {
  const size = win.end;
  let first: ParsedFrame;
  try {
    const parsed = parseFrame(new Cursor(win, 0));
    if (parsed.type !== 'frame') throw new Malformed('the trace starts with a trailer', 0);
    first = parsed;
  } catch (e) {
    if (e instanceof OutOfData) {
      // With a sound trailer the file was complete: a length in the header is damaged.
      if (trailerHolds(win)) throw frameError(file, 0, 'header', undefined, 0, 'a length runs past the end of the file');
      throw new TraceTruncatedError(`${file}: ends after ${size} bytes, inside the trace header: nothing to replay`, file);
    }
    if (e instanceof Malformed) throw frameError(file, 0, 'header', undefined, 0, malformedText(e, 0));
    throw e;
  }
  const headerFail = (what: string) => frameError(file, 0, 'header', undefined, 0, what);
  if (!checkCrc(win, first)) throw headerFail('checksum mismatch');
  if (first.number !== 0) throw headerFail(`the header frame is numbered ${first.number}`);
  const { created, meta } = first.header;
  if (typeof created !== 'string' || !isMap(meta)) throw headerFail("the header lacks 'created' or 'meta'");
  const header: TraceHeader = { version: id.version, tool: id.tool, created, meta };
  const headerInfo: FrameInfo = { kind: 'header', number: 0, offset: 0, length: first.end, header: first.header };

  if (!options.ignoreIndex) {
    const frames = readIndex(win, file, headerInfo);
    if (frames) return { header, frames, truncated: false, dataEnd: size, via: 'index' };
  }
  return { header, ...scanFrames(win, file, headerInfo), via: 'scan' };
}

function isMap(v: PlainValue | undefined): v is PlainMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * The frames listed by the index, found through the trailer. Undefined when the file does not
 * end with a trailer, or ends with one whose checksum fails: a torn file can end in bytes that
 * only look like a trailer, and the scan tells the two apart (it reaches a damaged trailer at
 * the end of a complete file, and reports it). Once the trailer's checksum holds, the file
 * was closed: damage to the index is corruption (TraceCorruptError), not truncation.
 */
function readIndex(win: Window, file: string, headerInfo: FrameInfo): FrameInfo[] | undefined {
  const size = win.end;
  const trailerAt = size - TRAILER_BYTES;
  if (trailerAt < headerInfo.length + MIN_FRAME_BYTES) return undefined;
  if (!trailerHolds(win)) return undefined;
  const indexAt = new Cursor(win, trailerAt + TRAILER_PREFIX.length).be(8);
  if (indexAt < headerInfo.length || indexAt > trailerAt - MIN_FRAME_BYTES) {
    throw trailerError(file, trailerAt, `the index offset ${indexAt} is outside the frames (${headerInfo.length}-${trailerAt})`);
  }

  // The frame's number and header are named once its checksum has vouched for them.
  let index: ParsedFrame | undefined;
  const fail = (what: string) => frameError(file, index?.number, 'index', index?.header, indexAt, what);
  try {
    const parsed = parseFrame(new Cursor(win, indexAt, trailerAt));
    // The trailer's checksum holds, so its offset is right and the frame there is damaged.
    if (parsed.type !== 'frame' || parsed.kind !== 'index') throw fail(`the trailer points at a '${parsed.type === 'frame' ? printable(parsed.kind) : 'trailer'}' frame`);
    if (parsed.end !== trailerAt) throw fail(`the index ends at byte ${parsed.end}, not at the trailer (${trailerAt})`);
    if (!checkCrc(win, parsed)) throw fail('checksum mismatch');
    index = parsed;
    const frames = readIndexEntries(new Cursor(win, index.payloadStart, index.payloadStart + index.payloadLength), index.number, headerInfo, indexAt);
    frames.push({ kind: 'index', number: index.number, offset: indexAt, length: index.end - indexAt, header: index.header });
    return frames;
  } catch (e) {
    if (e instanceof Malformed) throw fail(malformedText(e, indexAt));
    if (e instanceof OutOfData) throw fail(index ? 'an index entry runs past the index' : 'the index frame runs into the trailer');
    throw e;
  }
}

/** The index payload: [kind, number, offset, header] for frames 0 .. count - 1. */
function readIndexEntries(cur: Cursor, count: number, headerInfo: FrameInfo, indexAt: number): FrameInfo[] {
  const listAt = cur.pos;
  const n = cur.arrayHeader('the index');
  if (n !== count) throw new Malformed(`the index lists ${n} frames, but the index frame is frame ${count}`, listAt);
  const frames: FrameInfo[] = [];
  const offsets: number[] = [];
  for (let number = 0; number < n; number++) {
    const at = cur.pos;
    if (cur.arrayHeader('an index entry') !== 4) throw new Malformed(`index entry ${number} does not have 4 items`, at);
    const kind = cur.str('a frame kind', 255);
    if (cur.uint('a frame number') !== number) throw new Malformed(`index entry ${number} has another frame number`, at);
    const offset = cur.uint('a frame offset');
    const hAt = cur.pos;
    cur.skipPlain('a frame header', true);
    if (cur.pos - hAt > MAX_HEADER_BYTES) throw new Malformed(`index entry ${number}'s header is larger than ${MAX_HEADER_BYTES} bytes`, hAt);
    const header = unpackPlain(cur.win.view(hAt, cur.pos - hAt)) as PlainMap;
    if (number === 0) {
      if (kind !== 'header' || offset !== 0) throw new Malformed('index entry 0 is not the header frame at byte 0', at);
      frames.push(headerInfo);
      offsets.push(0);
      continue;
    }
    if (!validKind(kind)) throw new Malformed(`index entry ${number} has the kind '${printable(kind)}'`, at);
    const previous = offsets[number - 1];
    const expected = number === 1 ? headerInfo.length : previous + MIN_FRAME_BYTES;
    if (number === 1 ? offset !== expected : offset < expected) throw new Malformed(`index entry ${number} has the offset ${offset}, after ${previous}`, at);
    if (offset > indexAt - MIN_FRAME_BYTES) throw new Malformed(`index entry ${number} has the offset ${offset}, past the index at ${indexAt}`, at);
    offsets.push(offset);
    frames.push({ kind, number, offset, length: 0, header });
  }
  if (cur.pos !== cur.limit) throw new Malformed('bytes after the last index entry', cur.pos);
  // Each frame runs to the next one; the last to the index.
  for (let i = 1; i < frames.length; i++) {
    frames[i] = { ...frames[i], length: (i + 1 < frames.length ? offsets[i + 1] : indexAt) - offsets[i] };
  }
  return frames;
}

/** Kinds a frame between the header and the index may have. */
function validKind(kind: string): boolean {
  return kind === 'end' || (KIND_PATTERN.test(kind) && kind !== 'header' && kind !== 'index' && kind !== 'trailer');
}

/** Reads frames from the header on, checking each; stops at a torn frame or the trailer. */
function scanFrames(win: Window, file: string, headerInfo: FrameInfo): Omit<Layout, 'header' | 'via'> {
  const size = win.end;
  const frames = [headerInfo];
  let pos = headerInfo.length;
  const cur = new Cursor(win, pos);
  while (pos < size) {
    const number = frames.length;
    const previous = frames[number - 1];
    cur.pos = pos;
    let f;
    try {
      f = parseFrame(cur);
    } catch (e) {
      if (e instanceof OutOfData) {
        // A torn last frame, unless the file ends with a sound trailer: then it was complete,
        // and a length in this frame is damaged.
        if (trailerHolds(win)) throw frameError(file, number, undefined, undefined, pos, 'a length runs past the end of the file');
        break;
      }
      if (e instanceof Malformed) {
        // What follows the index is the trailer.
        const trailerLike = previous.kind === 'index' || (pos + TRAILER_BYTES === size && win.byte(pos) === TRAILER_PREFIX[0]);
        throw trailerLike ? trailerError(file, pos, malformedText(e, pos)) : frameError(file, number, undefined, undefined, pos, malformedText(e, pos));
      }
      throw e;
    }
    if (f.type === 'trailer') {
      if (!checkCrc(win, f)) throw trailerError(file, pos, 'checksum mismatch');
      if (f.end !== size) throw trailerError(file, pos, `${size - f.end} bytes follow the trailer`);
      if (previous.kind !== 'index' || f.indexOffset !== previous.offset) throw trailerError(file, pos, 'it does not point at the index before it');
      return { frames, truncated: false, dataEnd: size };
    }
    // Until the checksum vouches for the frame, its kind and header may be the damaged bytes.
    if (!checkCrc(win, f)) throw frameError(file, number, undefined, undefined, pos, 'checksum mismatch');
    const fail = (what: string) => frameError(file, number, f.kind, f.header, pos, what);
    if (f.number !== number) throw fail(`the frame says it is frame ${f.number}`);
    if (previous.kind === 'index') throw fail('a frame after the index');
    if (!validKind(f.kind) && f.kind !== 'index') throw fail(`'${printable(f.kind)}' is not a frame kind`);
    frames.push({ kind: f.kind, number, offset: pos, length: f.end - pos, header: f.header });
    pos = f.end;
  }
  return { frames, truncated: true, dataEnd: pos };
}
