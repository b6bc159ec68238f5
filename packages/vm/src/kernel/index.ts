export * from './bpftool.js';
export * from './bpffs.js';
export * from './clang.js';
export * from './exec.js';
export * from './object.js';
