export * from './assemble.js';
export * from './disassemble.js';
export * from './datafile.js';
