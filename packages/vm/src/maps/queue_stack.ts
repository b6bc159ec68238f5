// BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c): a ring of
// max_entries + 1 value slots with head and tail indexes, exactly as the kernel keeps it. Both
// push at head; a queue pops at tail (FIFO), a stack at head - 1 (LIFO). Pushing into a full
// map fails with -E2BIG unless BPF_EXIST asks to drop the oldest element (at tail) to make room.

import type { MapDef } from '../program.js';
import { BpfMap, type MapEntry } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_EXIST, BPF_NOEXIST, E2BIG, EINVAL, ENOENT } from './uapi.js';

export class QueueStackMap extends BpfMap {
  readonly stack: boolean;
  /** Ring slots: max_entries + 1, one always empty to tell full from empty. */
  readonly size: number;
  private head = 0;
  private tail = 0;
  private store: PagedStore;

  constructor(def: MapDef, cpus: number, stack: boolean) {
    super(def, cpus);
    this.stack = stack;
    this.size = def.maxEntries + 1;
    this.store = new PagedStore(this.size, def.valueSize);
  }

  get count(): number {
    return (this.head - this.tail + this.size) % this.size;
  }

  private isEmpty(): boolean {
    return this.head === this.tail;
  }

  private isFull(): boolean {
    let head = this.head + 1;
    if (head >= this.size) head = 0;
    return head === this.tail;
  }

  // queue_stack_map_push_elem()
  override push(value: Uint8Array, flags: number): number {
    if (flags & BPF_NOEXIST || flags > BPF_EXIST) return -EINVAL;
    const hook = this.onMutate;
    if (this.isFull()) {
      if (!(flags & BPF_EXIST)) return -E2BIG;
      // Overwrite the oldest element.
      const dropped = hook ? this.store.read(this.tail, this.def.valueSize).slice() : undefined;
      if (++this.tail >= this.size) this.tail = 0;
      if (hook) hook({ op: 'pop', before: dropped });
    }
    this.store.write(this.head, value.subarray(0, this.def.valueSize));
    if (++this.head >= this.size) this.head = 0;
    if (hook) hook({ op: 'push', after: value.slice(0, this.def.valueSize) });
    return 0;
  }

  /** The ring index popped or peeked next: tail for a queue, head - 1 for a stack. */
  private nextOut(): number {
    if (!this.stack) return this.tail;
    return this.head === 0 ? this.size - 1 : this.head - 1;
  }

  // __queue_map_get() / __stack_map_get(): an empty map zeroes the caller's buffer.
  private get(out: Uint8Array, remove: boolean): number {
    if (this.isEmpty()) {
      out.fill(0, 0, this.def.valueSize);
      return -ENOENT;
    }
    const index = this.nextOut();
    const value = this.store.read(index, this.def.valueSize);
    out.set(value);
    if (remove) {
      const hook = this.onMutate;
      if (this.stack) this.head = index;
      else if (++this.tail >= this.size) this.tail = 0;
      if (hook) hook({ op: 'pop', before: value.slice() });
    }
    return 0;
  }

  override pop(out: Uint8Array): number {
    return this.get(out, true);
  }

  override peek(out: Uint8Array): number {
    return this.get(out, false);
  }

  /** BPF_MAP_LOOKUP_ELEM on a queue or stack peeks. */
  lookupSys(_key: Uint8Array): Uint8Array | number {
    const out = new Uint8Array(this.def.valueSize);
    const err = this.peek(out);
    return err || out;
  }

  /** Programs push with bpf_map_push_elem(); queue_stack_map_update_elem() refuses. */
  update(_key: Uint8Array, _value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }

  delete(_key: Uint8Array): number {
    return -EINVAL;
  }

  /** queue_stack_map_get_next_key() returns -EINVAL: there are no keys. */
  getNextKey(_key: Uint8Array | undefined): Uint8Array | undefined {
    return undefined;
  }

  /** The elements in the order pops would return them, with empty keys. */
  *entries(): Iterable<MapEntry> {
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const index = this.stack ? (this.head - 1 - i + 2 * this.size) % this.size : (this.tail + i) % this.size;
      yield { key: new Uint8Array(0), value: this.store.read(index, this.def.valueSize).slice() };
    }
  }

  clone(): QueueStackMap {
    const c = new QueueStackMap(this.def, this.cpus, this.stack);
    c.head = this.head;
    c.tail = this.tail;
    c.store = this.store.clone();
    return c;
  }
}
