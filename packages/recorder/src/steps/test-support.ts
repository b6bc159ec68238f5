// Shared by the tests: an instrumentation that logs every write explicitly, the independent
// account the predicted step records must agree with.
import type { Instrumentation } from '@rewind/vm';

/** A log entry: [step, pc, dst, lo, hi] for an instruction (dst -1: no register written), [step, pc, 's', region, offset | 0, size, lo, hi] for an inline store. */
export type LogEntry = (number | string)[];

/** Pushes a LogEntry onto `vm.log` (set on the machine before the program compiles) for every instruction. */
export function bruteForce(): Instrumentation {
  return {
    prologue: () => 'const LOG = vm.log;',
    enter: () => '',
    epilogue: () => '',
    afterInsn: (pc, dst, step) => (dst < 0 ? `LOG.push([${step}, ${pc}, -1, 0, 0]);` : `LOG.push([${step}, ${pc}, ${dst}, l${dst}, h${dst}]);`),
    afterStore: (pc, size, region, at, vl, vh, step) => `LOG.push([${step}, ${pc}, 's', ${region}, ${at} | 0, ${size}, ${vl}, ${vh}]);`,
    branch: (pc, _taken, step) => `LOG.push([${step}, ${pc}, -1, 0, 0]);`,
    beforeCall: () => '',
  };
}
