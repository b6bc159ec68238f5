// eBPF maps as the kernel implements them, as a byte-level library for the VM and the helpers.
export * from './uapi.js';
export * from './map.js';
export * from './paged.js';
export * from './array.js';
export * from './hashtab.js';
export * from './keyindex.js';
export * from './lpm_trie.js';
export * from './queue_stack.js';
export * from './ringbuf.js';
export * from './fd_maps.js';
export * from './dev_maps.js';
export * from './bloom_filter.js';
export * from './create.js';
export * from './dump.js';
