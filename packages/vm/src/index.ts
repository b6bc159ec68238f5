export * from './isa.js';
export * from './program.js';
