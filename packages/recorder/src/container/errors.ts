// What the trace container reports. Every message is one line that starts with the file's
// name; damage inside a frame names the frame (number, kind, a few header fields) and the byte
// offset where the frame starts, so a user can tell which steps are lost.
import { RewindError } from '@rewind/vm/core';

/** Base class of the container's errors: a trace could not be written or read. */
export class TraceError extends RewindError {
  override name = 'TraceError';
  constructor(
    message: string,
    /** The trace file (or the name given to an in-memory trace). */
    readonly file: string,
  ) {
    super(message);
  }
}

/** The file is not a Rewind trace at all. */
export class TraceFormatError extends TraceError {
  override name = 'TraceFormatError';
}

/** The file is a Rewind trace in a format version this Rewind does not read. */
export class TraceVersionError extends TraceFormatError {
  override name = 'TraceVersionError';
  constructor(
    message: string,
    file: string,
    readonly version: number,
    /** The `tool` string of the Rewind that wrote the file, when readable. */
    readonly writtenBy: string | undefined,
  ) {
    super(message, file);
  }
}

/** The file ends before its header frame is complete: there is nothing to replay. */
export class TraceTruncatedError extends TraceError {
  override name = 'TraceTruncatedError';
}

/** Bytes of the file are damaged: a checksum does not match or the structure is broken. */
export class TraceCorruptError extends TraceError {
  override name = 'TraceCorruptError';
  constructor(
    message: string,
    file: string,
    /** Byte offset of the damaged frame (or of the damaged byte when no frame applies). */
    readonly offset: number,
    /** Number of the damaged frame; undefined for the trailer. */
    readonly frame: number | undefined,
    /** Kind of the damaged frame, when known. */
    readonly kind: string | undefined,
  ) {
    super(message, file);
  }
}
