export * from './btf.js';
export * from './ext.js';
export * from './format.js';
