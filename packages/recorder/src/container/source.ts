// Where the reader's bytes come from. A trace can be gigabytes, so the reader never loads a
// whole file: it reads windows at offsets. Positions are always byte offsets in the file.
import { closeSync, readSync } from 'node:fs';

export interface ByteSource {
  /** Offset just past the last byte (the file's size). */
  readonly end: number;
  /** Fills `target` from offset `position`; returns the bytes read, fewer only at `end`. */
  read(target: Uint8Array, position: number): number;
  close(): void;
}

export class FileSource implements ByteSource {
  constructor(
    private fd: number,
    readonly end: number,
  ) {}

  read(target: Uint8Array, position: number): number {
    let done = 0;
    while (done < target.length) {
      // readSync reads at most 2 GiB - 4 KiB per call on Linux; loop for the rest.
      const n = readSync(this.fd, target, done, Math.min(target.length - done, 1 << 30), position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** Bytes in memory that stand at offset `base` of a file (a whole trace when base is 0). */
export class MemorySource implements ByteSource {
  readonly end: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly base = 0,
  ) {
    this.end = base + bytes.length;
  }

  read(target: Uint8Array, position: number): number {
    const from = position - this.base;
    const n = Math.max(0, Math.min(target.length, this.bytes.length - from));
    target.set(this.bytes.subarray(from, from + n));
    return n;
  }

  close(): void {}
}
