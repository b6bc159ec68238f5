// A hash index from fixed-size keys to slots, in typed arrays: lookups hash the key bytes in
// place and allocate nothing. Slots are handed out from a free list (the kernel's preallocated
// freelist plays the same role), and the tables grow by doubling up to max_entries, so a map
// declared with a million entries costs only what it holds.
//
// Besides the hash chains, slots sit on an insertion-order list (the order getNextKey walks) and,
// for LRU maps, on a recency list whose tail is the least recently used entry.

const NONE = -1;

export class KeyIndex {
  capacity = 0;
  count = 0;
  private keys = new Uint8Array(0);
  private hashes = new Int32Array(0);
  private chain = new Int32Array(0);
  private buckets = new Int32Array(0);
  private bucketMask = 0;
  private iterPrev = new Int32Array(0);
  private iterNext = new Int32Array(0);
  private iterHead = NONE;
  private iterTail = NONE;
  private recPrev = new Int32Array(0);
  private recNext = new Int32Array(0);
  private recHead = NONE;
  private recTail = NONE;
  private freeSlots = new Int32Array(0);
  private freeTop = 0;
  private fresh = 0;

  constructor(
    readonly keySize: number,
    readonly maxEntries: number,
    readonly trackRecency = false,
  ) {}

  private hash(key: Uint8Array): number {
    // Multiply-xorshift over 32-bit words of the key, then its remaining bytes.
    const n = this.keySize;
    let h = n;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      h = Math.imul(h ^ (key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)), 0x9e3779b1);
      h ^= h >>> 15;
    }
    for (; i < n; i++) h = Math.imul(h ^ key[i], 0x01000193);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return h ^ (h >>> 13);
  }

  private equals(slot: number, key: Uint8Array): boolean {
    const keys = this.keys;
    const n = this.keySize;
    const base = slot * n;
    for (let i = 0; i < n; i++) if (keys[base + i] !== key[i]) return false;
    return true;
  }

  /** The slot holding `key`, or -1. */
  find(key: Uint8Array): number {
    if (this.count === 0) return NONE;
    const h = this.hash(key);
    for (let s = this.buckets[h & this.bucketMask]; s !== NONE; s = this.chain[s]) {
      if (this.hashes[s] === h && this.equals(s, key)) return s;
    }
    return NONE;
  }

  /** Adds `key` (which must be absent, with count < maxEntries) and returns its slot. */
  insert(key: Uint8Array): number {
    const slot = this.freeTop > 0 ? this.freeSlots[--this.freeTop] : this.freshSlot();
    this.keys.set(key.subarray(0, this.keySize), slot * this.keySize);
    const h = this.hash(key);
    this.hashes[slot] = h;
    const b = h & this.bucketMask;
    this.chain[slot] = this.buckets[b];
    this.buckets[b] = slot;
    this.iterPrev[slot] = this.iterTail;
    this.iterNext[slot] = NONE;
    if (this.iterTail !== NONE) this.iterNext[this.iterTail] = slot;
    else this.iterHead = slot;
    this.iterTail = slot;
    if (this.trackRecency) this.linkRecent(slot);
    this.count++;
    return slot;
  }

  remove(slot: number): void {
    const b = this.hashes[slot] & this.bucketMask;
    if (this.buckets[b] === slot) this.buckets[b] = this.chain[slot];
    else {
      let s = this.buckets[b];
      while (this.chain[s] !== slot) s = this.chain[s];
      this.chain[s] = this.chain[slot];
    }
    const p = this.iterPrev[slot];
    const n = this.iterNext[slot];
    if (p !== NONE) this.iterNext[p] = n;
    else this.iterHead = n;
    if (n !== NONE) this.iterPrev[n] = p;
    else this.iterTail = p;
    if (this.trackRecency) this.unlinkRecent(slot);
    this.freeSlots[this.freeTop++] = slot;
    this.count--;
  }

  /** Marks a slot most recently used. */
  touch(slot: number): void {
    if (this.recHead === slot) return;
    this.unlinkRecent(slot);
    this.linkRecent(slot);
  }

  /** The least recently used slot, or -1. */
  leastRecent(): number {
    return this.recTail;
  }

  private linkRecent(slot: number): void {
    this.recPrev[slot] = NONE;
    this.recNext[slot] = this.recHead;
    if (this.recHead !== NONE) this.recPrev[this.recHead] = slot;
    else this.recTail = slot;
    this.recHead = slot;
  }

  private unlinkRecent(slot: number): void {
    const p = this.recPrev[slot];
    const n = this.recNext[slot];
    if (p !== NONE) this.recNext[p] = n;
    else this.recHead = n;
    if (n !== NONE) this.recPrev[n] = p;
    else this.recTail = p;
  }

  /** The first slot in iteration order, or -1. */
  first(): number {
    return this.iterHead;
  }

  /** The slot after `slot` in iteration order, or -1. */
  next(slot: number): number {
    return this.iterNext[slot];
  }

  /** A copy of the key in `slot`. */
  keyAt(slot: number): Uint8Array {
    return this.keys.slice(slot * this.keySize, (slot + 1) * this.keySize);
  }

  private freshSlot(): number {
    if (this.fresh === this.capacity) this.grow();
    return this.fresh++;
  }

  private grow(): void {
    const cap = Math.min(this.maxEntries, Math.max(16, this.capacity * 2));
    const resize = <T extends Int32Array | Uint8Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.keys = resize(this.keys, cap * this.keySize);
    this.hashes = resize(this.hashes, cap);
    this.chain = resize(this.chain, cap);
    this.iterPrev = resize(this.iterPrev, cap);
    this.iterNext = resize(this.iterNext, cap);
    if (this.trackRecency) {
      this.recPrev = resize(this.recPrev, cap);
      this.recNext = resize(this.recNext, cap);
    }
    this.freeSlots = resize(this.freeSlots, cap);
    this.capacity = cap;
    // Rehash into a table of at least as many buckets as slots.
    let nb = 16;
    while (nb < cap) nb *= 2;
    this.buckets = new Int32Array(nb).fill(NONE);
    this.bucketMask = nb - 1;
    for (let s = this.iterHead; s !== NONE; s = this.iterNext[s]) {
      const b = this.hashes[s] & this.bucketMask;
      this.chain[s] = this.buckets[b];
      this.buckets[b] = s;
    }
  }

  clone(): KeyIndex {
    const c = new KeyIndex(this.keySize, this.maxEntries, this.trackRecency);
    c.capacity = this.capacity;
    c.count = this.count;
    c.keys = this.keys.slice();
    c.hashes = this.hashes.slice();
    c.chain = this.chain.slice();
    c.buckets = this.buckets.slice();
    c.bucketMask = this.bucketMask;
    c.iterPrev = this.iterPrev.slice();
    c.iterNext = this.iterNext.slice();
    c.iterHead = this.iterHead;
    c.iterTail = this.iterTail;
    c.recPrev = this.recPrev.slice();
    c.recNext = this.recNext.slice();
    c.recHead = this.recHead;
    c.recTail = this.recTail;
    c.freeSlots = this.freeSlots.slice();
    c.freeTop = this.freeTop;
    c.fresh = this.fresh;
    return c;
  }
}
