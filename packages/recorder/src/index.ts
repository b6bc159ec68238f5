// The .rwt trace container: a crash-safe, checksummed, indexed stream of MessagePack frames.
export { TraceWriter, type TraceWriterOptions } from './container/writer.js';
export { TraceReader, type FrameInfo, type TraceHeader, type TraceReaderOptions } from './container/reader.js';
export { TraceError, TraceFormatError, TraceVersionError, TraceTruncatedError, TraceCorruptError } from './container/errors.js';
export { packPlainMap, unpackPlain, type PlainMap, type PlainValue } from './container/plain.js';
export { crc32 } from './container/crc32.js';
export { FORMAT_VERSION, OLDEST_READABLE_VERSION, MAGIC, REWIND_VERSION } from './container/format.js';
export { Recorder, RECORD_SLICE, type RecorderOptions, type RecordedRun } from './recorder.js';
export { StepBuffer, stepInstrumentation } from './steps/instrument.js';
export { Trace, inspectJson } from './trace/trace.js';
export { MapState } from './trace/mapstate.js';
export type * from './trace/types.js';
export { verifyTrace, type VerifyResult } from './trace/verify.js';
