// The VM core alone (instruction set, validation, engine, disassembly), for entry points that
// start often and must start fast, such as `rewind conformance-plugin`.
export * from './isa.js';
export * from './errors.js';
export * from './program.js';
export * from './validate.js';
export * from './engine/memory.js';
export * from './engine/machine.js';
export * from './engine/compile.js';
export * from './engine/vm.js';
export * from './engine/raw.js';
