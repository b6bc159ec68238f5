// `@rewind/recorder/testing`: the test harness without any test framework — loading and running
// programs into traces, comparing verdicts, packets, maps and output, and the declarative test
// files `rewind test` runs.
export * from './harness.js';
export * from './spec.js';
