// Writes a trace: the header frame, then one frame per append, then at close an "end" frame,
// the index and the trailer. Frames go to the file whole (one write call for one frame, or for
// a batch of them when the writer buffers), so a recorder killed at any moment leaves whole
// frames followed by at most one torn frame, which the reader reports as truncation.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { encodeFrame, encodeFrameInto, encodeHeaderFrame, encodeIndexPayload, encodeTrailer, frameSize, type IndexEntry } from './encode.js';
import { TraceError } from './errors.js';
import { FORMAT_VERSION, KIND_PATTERN, MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, RESERVED_KINDS, TOOL, TRAILER_BYTES } from './format.js';
import { NotPlainError, packPlainView, type PlainMap } from './plain.js';

export interface TraceWriterOptions {
  /** Stored in the header frame (the program, its inputs, ...): plain values only. */
  readonly meta?: PlainMap;
  /** Replace an existing file. By default an existing file is never touched. */
  readonly overwrite?: boolean;
  /** The header's `tool` entry; defaults to `rewind <version>`. */
  readonly tool?: string;
  /** The header's creation time; defaults to now. */
  readonly created?: Date;
  /**
   * Gather frames and write them together once this many bytes wait, or once the oldest has
   * waited `ms` (checked at each append; default 0: every frame is written as it comes). A
   * recorder killed meanwhile loses only the frames still waiting.
   */
  readonly buffer?: { bytes: number; ms: number };
}

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

export class TraceWriter {
  private readonly entries: IndexEntry[] = [];
  /** Where the next frame goes (frames still waiting included), and how much is in the file. */
  private position = 0;
  private flushed = 0;
  /** Frames waiting to be written: bytes [0, pendingLength) of `pending`, reused after each write. */
  private pending = new Uint8Array(0);
  private pendingLength = 0;
  private pendingSince = 0;
  /** Frame headers as the index lists them, copied into shared blocks (one allocation per block, not per frame). */
  private headerBlock = new Uint8Array(0);
  private headerUsed = 0;
  private state: 'open' | 'closed' | 'failed' = 'open';

  private constructor(
    /** The file being written. */
    readonly path: string,
    private readonly fd: number,
    private readonly buffer: { bytes: number; ms: number } | undefined,
  ) {}

  /** Creates `path` (failing if it exists, unless `overwrite`) and writes the header frame. */
  static create(path: string, options: TraceWriterOptions = {}): TraceWriter {
    const tool = options.tool ?? TOOL;
    if (Buffer.byteLength(tool) > 255) throw new TraceError(`${path}: the tool name is longer than 255 bytes`, path);
    const created = (options.created ?? new Date()).toISOString();
    // Everything that can be refused is encoded before the file is created.
    const header = plainMap(path, { created, meta: options.meta ?? {} }, 'the header');
    let fd: number;
    try {
      fd = openSync(path, options.overwrite ? 'w' : 'wx');
    } catch (e) {
      const code = errorCode(e);
      if (code === 'EEXIST') throw new TraceError(`${path}: already exists (a trace is only replaced when asked to overwrite)`, path);
      throw new TraceError(`${path}: cannot create (${code})`, path);
    }
    const writer = new TraceWriter(path, fd, options.buffer);
    try {
      writer.write(encodeHeaderFrame(FORMAT_VERSION, tool, header), 'header', header);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return writer;
  }

  /** Frames written so far, the header frame included; the next frame's number. */
  get frameCount(): number {
    return this.entries.length;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.position;
  }

  get closed(): boolean {
    return this.state !== 'open';
  }

  /**
   * Writes one frame and returns its number. `kind` names what the payload holds ("chunk",
   * "keyframe", ...); `header` is a small plain map the reader lists for every frame (the
   * steps a chunk covers, say) without reading payloads.
   */
  append(kind: string, header: PlainMap = {}, payload: Uint8Array = new Uint8Array(0)): number {
    this.checkOpen();
    if (!KIND_PATTERN.test(kind)) {
      throw new TraceError(`${this.path}: '${kind}' is not a frame kind (lowercase letters, digits, '-', '_'; at most 32)`, this.path);
    }
    if (RESERVED_KINDS.has(kind)) throw new TraceError(`${this.path}: the frame kind '${kind}' is written by the container itself`, this.path);
    if (!(payload instanceof Uint8Array)) throw new TraceError(`${this.path}: a ${kind} frame's payload must be a Uint8Array`, this.path);
    if (payload.length > MAX_PAYLOAD_BYTES) {
      throw new TraceError(`${this.path}: a ${kind} frame's payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`, this.path);
    }
    const h = plainMap(this.path, header, `the ${kind} frame's header`);
    const number = this.entries.length;
    // Encoded straight into the pending buffer: no buffer of its own per frame.
    const offset = this.position;
    const at = this.reserve(frameSize(kind, h, payload));
    const n = encodeFrameInto(this.pending, at, kind, number, h, payload);
    this.pendingLength = at + n;
    this.position += n;
    this.entries.push({ kind, offset, header: this.keepHeader(h) });
    this.afterWrite();
    return number;
  }

  /** Writes the frames still waiting (a buffering writer). */
  flush(): void {
    if (this.pendingLength === 0) return;
    const bytes = this.pending.subarray(0, this.pendingLength);
    this.pendingLength = 0;
    try {
      // One call; the loop only matters if the kernel writes less (a full disk, a signal).
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, this.flushed + done);
    } catch (e) {
      // Whatever reached the file stays a torn last frame: refuse to write after it.
      this.state = 'failed';
      throw new TraceError(`${this.path}: cannot write frame ${this.entries.length - 1}: ${errorCode(e)}`, this.path);
    }
    this.flushed += bytes.length;
  }

  /**
   * Ends the trace: an "end" frame holding `finalMeta`, the index of all frames and the
   * trailer, then fsync. A trace that is never closed reads as truncated. Closing a writer whose
   * write failed only closes the file.
   */
  close(finalMeta: PlainMap = {}): void {
    if (this.state === 'closed') return;
    // Refused metadata leaves the writer open, to be closed again with other metadata.
    const h = this.state === 'open' ? plainMap(this.path, finalMeta, 'the final metadata') : undefined;
    try {
      if (h) {
        this.write(encodeFrame('end', this.entries.length, h, new Uint8Array(0)), 'end', h);
        const indexOffset = this.position;
        const index = encodeFrame('index', this.entries.length, plainMap(this.path, { frames: this.entries.length }, 'the index header'), encodeIndexPayload(this.entries));
        const tail = new Uint8Array(index.length + TRAILER_BYTES);
        tail.set(index);
        tail.set(encodeTrailer(indexOffset), index.length);
        this.writeBytes(tail, 'index');
        this.flush();
        fsyncSync(this.fd);
      }
    } catch (e) {
      if (e instanceof TraceError) throw e;
      throw new TraceError(`${this.path}: cannot finish the trace (${errorCode(e)})`, this.path);
    } finally {
      this.state = 'closed';
      closeSync(this.fd);
    }
  }

  private checkOpen(): void {
    if (this.state === 'closed') throw new TraceError(`${this.path}: the trace writer is closed`, this.path);
    if (this.state === 'failed') throw new TraceError(`${this.path}: an earlier write failed; the file keeps the frames before it`, this.path);
  }

  private write(frame: Uint8Array, kind: string, header: Uint8Array): void {
    const offset = this.position;
    this.writeBytes(frame, kind);
    this.entries.push({ kind, offset, header: this.keepHeader(header) });
  }

  private writeBytes(bytes: Uint8Array, kind: string): void {
    void kind;
    const at = this.reserve(bytes.length);
    this.pending.set(bytes, at);
    this.pendingLength = at + bytes.length;
    this.position += bytes.length;
    this.afterWrite();
  }

  /** Room for `n` more bytes in the pending buffer (writing what waits first when it is full); where they go. */
  private reserve(n: number): number {
    if (this.pendingLength + n > this.pending.length) {
      this.flush();
      if (n > this.pending.length) this.pending = new Uint8Array(Math.max(n, 2 * (this.buffer?.bytes ?? 0), 64 * 1024));
    }
    if (this.pendingLength === 0) this.pendingSince = Date.now();
    return this.pendingLength;
  }

  /** Writes what waits once enough bytes or time have gathered (at once for an unbuffered writer). */
  private afterWrite(): void {
    const b = this.buffer;
    if (!b || this.pendingLength >= b.bytes || Date.now() - this.pendingSince >= b.ms) this.flush();
  }

  /** A copy of a frame header for the index. */
  private keepHeader(h: Uint8Array): Uint8Array {
    if (this.headerUsed + h.length > this.headerBlock.length) {
      this.headerBlock = new Uint8Array(Math.max(h.length, 16 * 1024));
      this.headerUsed = 0;
    }
    const at = this.headerUsed;
    this.headerBlock.set(h, at);
    this.headerUsed += h.length;
    return this.headerBlock.subarray(at, at + h.length);
  }
}

function plainMap(path: string, map: PlainMap, where: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = packPlainView(map, where);
  } catch (e) {
    if (e instanceof NotPlainError) throw new TraceError(`${path}: ${e.message}`, path);
    throw e;
  }
  if (bytes.length > MAX_HEADER_BYTES) {
    throw new TraceError(`${path}: ${where} encodes to ${bytes.length} bytes, more than ${MAX_HEADER_BYTES}; put bulk data in a payload`, path);
  }
  return bytes;
}
