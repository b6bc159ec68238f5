// The trace reader's interface, as the debugger uses it. The debugger never sees the file
// format: everything goes through TraceView (packages/recorder/src/trace/types.ts).

export type {
  FrameState,
  MapsState,
  Origin,
  Provenance,
  StepPosition,
  StepQuery,
  StepState,
  TraceEvent,
  TraceProgram,
  TraceRun,
  TraceView,
  WriteTarget,
} from '@rewind/recorder';
