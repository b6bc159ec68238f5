// BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c): a binary trie of prefixes. Keys are
// struct bpf_lpm_trie_key_u8 { u32 prefixlen; u8 data[]; }; lookups return the longest stored
// prefix that matches, iteration is post-order (more specific prefixes first). The trie shape,
// the intermediate nodes and every walk follow the kernel's code, so getNextKey visits keys in
// the kernel's order. Stored key data keep the bits past prefixlen as given, as the kernel does.

import type { MapDef } from '../program.js';
import { BpfMap, checkValueSpace, roundUp8, type MapEntry, type ValueMap } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOSPC } from './uapi.js';

interface LpmNode {
  prefixlen: number;
  data: Uint8Array;
  /** LPM_TREE_NODE_FLAG_IM: an intermediate node without a value. */
  im: boolean;
  child: [LpmNode | null, LpmNode | null];
  /** Value slot (-1 for intermediate nodes). */
  slot: number;
}

/** The slot that holds a node: the trie's root or one of a node's children. */
interface Link {
  get(): LpmNode | null;
  set(n: LpmNode | null): void;
}

function extractBit(data: Uint8Array, index: number): 0 | 1 {
  return (data[index >> 3] >> (7 - (index & 7))) & 1 ? 1 : 0;
}

function prefixlenOf(key: Uint8Array): number {
  return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
}

export class LpmTrieMap extends BpfMap implements ValueMap {
  readonly stride: number;
  readonly slotCount: number;
  readonly dataSize: number;
  readonly maxPrefixlen: number;
  private root: LpmNode | null = null;
  private nEntries = 0;
  private store: PagedStore;
  private freeSlots: number[] = [];
  private freshSlot = 0;
  private readonly rootLink: Link = { get: () => this.root, set: (n) => (this.root = n) };

  constructor(def: MapDef, cpus: number) {
    super(def, cpus);
    this.dataSize = def.keySize - 4;
    this.maxPrefixlen = this.dataSize * 8;
    this.stride = roundUp8(def.valueSize);
    this.slotCount = def.maxEntries;
    checkValueSpace(def, this.stride, this.slotCount);
    this.store = new PagedStore(this.slotCount, this.stride);
  }

  get count(): number {
    return this.nEntries;
  }

  /** __longest_prefix_match(): matching leading bits of node and key, at most both prefix lengths. */
  private longestPrefixMatch(node: LpmNode, key: Uint8Array): number {
    const limit = Math.min(node.prefixlen, prefixlenOf(key));
    let prefixlen = 0;
    for (let i = 0; i < this.dataSize && prefixlen < limit; i++) {
      const diff = node.data[i] ^ key[4 + i];
      if (diff) return Math.min(limit, prefixlen + Math.clz32(diff) - 24);
      prefixlen += 8;
    }
    return Math.min(limit, prefixlen);
  }

  private childLink(node: LpmNode, bit: 0 | 1): Link {
    return { get: () => node.child[bit], set: (n) => (node.child[bit] = n) };
  }

  private allocSlot(): number {
    return this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.freshSlot++;
  }

  private freeNode(node: LpmNode): void {
    if (node.slot >= 0) this.freeSlots.push(node.slot);
  }

  /** trie_lookup_elem(): the value slot of the longest matching prefix, or -1. */
  private findSlot(key: Uint8Array): number {
    if (prefixlenOf(key) > this.maxPrefixlen) return -1;
    let found: LpmNode | null = null;
    for (let node = this.root; node; ) {
      const matchlen = this.longestPrefixMatch(node, key);
      if (matchlen === this.maxPrefixlen) {
        found = node;
        break;
      }
      if (matchlen < node.prefixlen) break;
      if (!node.im) found = node;
      node = node.child[extractBit(key.subarray(4), node.prefixlen)];
    }
    return found ? found.slot : -1;
  }

  lookupSlot(key: Uint8Array, cpu: number): number {
    return cpu >= this.cpus ? -1 : this.findSlot(key);
  }

  valueBytes(slot: number): Uint8Array {
    return this.store.view(slot, this.def.valueSize);
  }

  readValue(slot: number): Uint8Array {
    return this.store.read(slot, this.def.valueSize);
  }

  pageOf(slot: number): Uint8Array {
    return this.store.page(slot);
  }
  pageOffset(slot: number): number {
    return this.store.offset(slot);
  }

  override lookup(key: Uint8Array, _cpu = 0): Uint8Array | undefined {
    const slot = this.findSlot(key);
    return slot < 0 ? undefined : this.valueBytes(slot);
  }

  /** The syscall's lookup is a longest-prefix match too. */
  lookupSys(key: Uint8Array): Uint8Array | number {
    const slot = this.findSlot(key);
    return slot < 0 ? -ENOENT : this.store.read(slot, this.def.valueSize).slice();
  }

  /** trie_check_add_elem(): a new element needs room and no BPF_EXIST. */
  private checkAddElem(flags: number): number {
    if (flags === BPF_EXIST) return -ENOENT;
    if (this.nEntries === this.def.maxEntries) return -ENOSPC;
    this.nEntries++;
    return 0;
  }

  // trie_update_elem()
  update(key: Uint8Array, value: Uint8Array, flags: number, _cpu = 0): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const prefixlen = prefixlenOf(key);
    if (prefixlen > this.maxPrefixlen) return -EINVAL;
    const keyData = key.subarray(4, 4 + this.dataSize);

    let link = this.rootLink;
    let node: LpmNode | null;
    let matchlen = 0;
    while ((node = link.get())) {
      matchlen = this.longestPrefixMatch(node, key);
      if (node.prefixlen !== matchlen || node.prefixlen === prefixlen) break;
      link = this.childLink(node, extractBit(keyData, node.prefixlen));
    }

    const hook = this.onMutate;
    let before: Uint8Array | undefined;
    let err = 0;
    let target: LpmNode;
    if (!node) {
      // An empty slot: attach a new leaf.
      if ((err = this.checkAddElem(flags))) return err;
      target = this.newNode(prefixlen, keyData);
      link.set(target);
    } else if (node.prefixlen === matchlen) {
      // The exact prefix exists: replace a real node's value, or make an intermediate node real.
      if (!node.im) {
        if (flags === BPF_NOEXIST) return -EEXIST;
        if (hook) before = this.store.read(node.slot, this.def.valueSize).slice();
        node.data = keyData.slice();
      } else {
        if ((err = this.checkAddElem(flags))) return err;
        node.im = false;
        node.data = keyData.slice();
        node.slot = this.allocSlot();
      }
      target = node;
    } else {
      if ((err = this.checkAddElem(flags))) return err;
      target = this.newNode(prefixlen, keyData);
      if (matchlen === prefixlen) {
        // The new prefix covers the node: insert it as the node's parent.
        target.child[extractBit(node.data, matchlen)] = node;
        link.set(target);
      } else {
        // Split: an intermediate node of the common prefix with both as children.
        const im: LpmNode = { prefixlen: matchlen, data: node.data.slice(), im: true, child: [null, null], slot: -1 };
        if (extractBit(keyData, matchlen)) im.child = [node, target];
        else im.child = [target, node];
        link.set(im);
      }
    }
    this.store.write(target.slot, value.subarray(0, this.def.valueSize));
    if (hook) hook({ op: 'update', key: key.slice(0, this.def.keySize), before, after: value.slice(0, this.def.valueSize) });
    return 0;
  }

  private newNode(prefixlen: number, data: Uint8Array): LpmNode {
    return { prefixlen, data: data.slice(), im: false, child: [null, null], slot: this.allocSlot() };
  }

  // trie_delete_elem()
  delete(key: Uint8Array): number {
    const prefixlen = prefixlenOf(key);
    if (prefixlen > this.maxPrefixlen) return -EINVAL;
    const keyData = key.subarray(4, 4 + this.dataSize);
    let trim = this.rootLink;
    let trim2 = trim;
    let parent: LpmNode | null = null;
    let node: LpmNode | null;
    let matchlen = 0;
    while ((node = trim.get())) {
      matchlen = this.longestPrefixMatch(node, key);
      if (node.prefixlen !== matchlen || node.prefixlen === prefixlen) break;
      parent = node;
      trim2 = trim;
      trim = this.childLink(node, extractBit(keyData, node.prefixlen));
    }
    if (!node || node.prefixlen !== prefixlen || node.prefixlen !== matchlen || node.im) return -ENOENT;

    const hook = this.onMutate;
    const before = hook ? this.store.read(node.slot, this.def.valueSize).slice() : undefined;
    const storedKey = hook ? this.keyOf(node) : undefined;
    this.nEntries--;
    if (node.child[0] && node.child[1]) {
      // Two children: the node stays as an intermediate one.
      this.freeNode(node);
      node.im = true;
      node.slot = -1;
    } else if (parent && parent.im && !node.child[0] && !node.child[1]) {
      // A leaf under an intermediate node: the sibling takes the intermediate node's place.
      trim2.set(node === parent.child[0] ? parent.child[1] : parent.child[0]);
      this.freeNode(node);
    } else {
      trim.set(node.child[0] ?? node.child[1]);
      this.freeNode(node);
    }
    if (hook) hook({ op: 'delete', key: storedKey, before });
    return 0;
  }

  private keyOf(node: LpmNode): Uint8Array {
    const k = new Uint8Array(4 + this.dataSize);
    new DataView(k.buffer).setUint32(0, node.prefixlen, true);
    k.set(node.data, 4);
    return k;
  }

  // trie_get_next_key(): post-order, so a prefix comes after every more specific one under it.
  getNextKey(key: Uint8Array | undefined): Uint8Array | undefined {
    let searchRoot = this.root;
    if (!searchRoot) return undefined;
    const leftmost = (from: LpmNode): Uint8Array => {
      // All intermediate nodes have two children, so this always ends on a real node.
      let next: LpmNode = from;
      for (let n: LpmNode | null = from; n; ) {
        if (n.im) n = n.child[0];
        else {
          next = n;
          n = n.child[0] ?? n.child[1];
        }
      }
      return this.keyOf(next);
    };
    if (!key || prefixlenOf(key) > this.maxPrefixlen) return leftmost(searchRoot);

    const prefixlen = prefixlenOf(key);
    const keyData = key.subarray(4, 4 + this.dataSize);
    const stack: LpmNode[] = [];
    let node: LpmNode | null;
    let matchlen = 0;
    for (node = searchRoot; node; ) {
      stack.push(node);
      matchlen = this.longestPrefixMatch(node, key);
      if (node.prefixlen !== matchlen || node.prefixlen === prefixlen) break;
      node = node.child[extractBit(keyData, node.prefixlen)];
    }
    if (!node || node.prefixlen !== matchlen || node.im) return leftmost(searchRoot);

    // The first node in post-order after the matched one.
    node = stack[stack.length - 1];
    for (let sp = stack.length - 1; sp > 0; sp--) {
      const parent = stack[sp - 1];
      if (parent.child[0] === node) {
        searchRoot = parent.child[1];
        if (searchRoot) return leftmost(searchRoot);
      }
      if (!parent.im) return this.keyOf(parent);
      node = parent;
    }
    return undefined;
  }

  slotKey(slot: number): { key: Uint8Array; cpu: number } | undefined {
    let found: LpmNode | undefined;
    const walk = (n: LpmNode | null): void => {
      if (!n || found) return;
      if (!n.im && n.slot === slot) found = n;
      walk(n.child[0]);
      walk(n.child[1]);
    };
    walk(this.root);
    return found && { key: this.keyOf(found), cpu: 0 };
  }

  *entries(): Iterable<MapEntry> {
    const out: LpmNode[] = [];
    const walk = (n: LpmNode | null): void => {
      if (!n) return;
      walk(n.child[0]);
      walk(n.child[1]);
      if (!n.im) out.push(n);
    };
    walk(this.root);
    for (const n of out) yield { key: this.keyOf(n), value: this.store.read(n.slot, this.def.valueSize).slice() };
  }

  clone(): LpmTrieMap {
    const c = new LpmTrieMap(this.def, this.cpus);
    const copy = (n: LpmNode | null): LpmNode | null =>
      n && { prefixlen: n.prefixlen, data: n.data.slice(), im: n.im, child: [copy(n.child[0]), copy(n.child[1])], slot: n.slot };
    c.root = copy(this.root);
    c.nEntries = this.nEntries;
    c.store = this.store.clone();
    c.freeSlots = this.freeSlots.slice();
    c.freshSlot = this.freshSlot;
    return c;
  }
}
