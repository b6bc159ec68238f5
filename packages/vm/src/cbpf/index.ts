// referenceCbpfRun (./reference.js) is test support and deliberately not exported here.
export * from './check.js';
export * from './convert.js';
export * from './insn.js';
export * from './parse.js';
