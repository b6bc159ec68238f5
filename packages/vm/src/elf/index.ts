export * from './elf.js';
export * from './loader.js';
export * from './maps.js';
export * from './sections.js';
export * from './core.js';
