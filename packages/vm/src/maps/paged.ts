// Lazily allocated value storage. A map's values are `slotCount` slots of `stride` bytes; slots
// are grouped into pages of about 64 KiB that are allocated on first write, so an array map of
// 33,554,432 entries (Katran's ch_rings) costs memory only for the pages a run touches. A page
// never moves once allocated: views into it stay valid for the life of the store.

export const PAGE_BYTES = 64 * 1024;

/** Shared zeros for reads of untouched pages; never written. */
let zeros = new Uint8Array(PAGE_BYTES);

function zeroView(len: number): Uint8Array {
  if (zeros.length < len) zeros = new Uint8Array(len);
  return zeros.subarray(0, len);
}

export class PagedStore {
  readonly slotsPerPage: number;
  readonly pageBytes: number;
  private readonly pages: (Uint8Array | undefined)[];

  constructor(
    readonly slotCount: number,
    readonly stride: number,
  ) {
    // A slot never straddles two pages: a value bigger than a page gets a page of its own.
    this.slotsPerPage = Math.max(1, Math.floor(PAGE_BYTES / stride));
    this.pageBytes = this.slotsPerPage * stride;
    this.pages = new Array(Math.ceil(slotCount / this.slotsPerPage));
  }

  /** The page holding `slot`, allocated (zero-filled) if it was never touched. */
  page(slot: number): Uint8Array {
    const p = (slot / this.slotsPerPage) | 0;
    let page = this.pages[p];
    if (!page) {
      const slots = Math.min(this.slotsPerPage, this.slotCount - p * this.slotsPerPage);
      page = this.pages[p] = new Uint8Array(slots * this.stride);
    }
    return page;
  }

  /** Byte offset of `slot` inside its page. */
  offset(slot: number): number {
    return (slot % this.slotsPerPage) * this.stride;
  }

  /** A live view of `len` bytes of `slot` (allocates its page). */
  view(slot: number, len: number): Uint8Array {
    const off = this.offset(slot);
    return this.page(slot).subarray(off, off + len);
  }

  /** The bytes of `slot` without allocating: a shared zero view when its page is untouched. */
  read(slot: number, len: number): Uint8Array {
    const page = this.pages[(slot / this.slotsPerPage) | 0];
    if (!page) return zeroView(len);
    const off = this.offset(slot);
    return page.subarray(off, off + len);
  }

  isTouched(slot: number): boolean {
    return this.pages[(slot / this.slotsPerPage) | 0] !== undefined;
  }

  write(slot: number, bytes: Uint8Array, at = 0): void {
    this.page(slot).set(bytes, this.offset(slot) + at);
  }

  /** Zeroes a slot; an untouched page is already zero and stays unallocated. */
  zero(slot: number): void {
    const page = this.pages[(slot / this.slotsPerPage) | 0];
    if (!page) return;
    const off = this.offset(slot);
    page.fill(0, off, off + this.stride);
  }

  /** Slot ranges [first, end) of allocated pages, in slot order. */
  *touchedRanges(): Generator<[number, number]> {
    for (let p = 0; p < this.pages.length; p++) {
      if (!this.pages[p]) continue;
      const first = p * this.slotsPerPage;
      yield [first, Math.min(first + this.slotsPerPage, this.slotCount)];
    }
  }

  /** Bytes held by allocated pages. */
  get allocatedBytes(): number {
    let n = 0;
    for (const page of this.pages) if (page) n += page.byteLength;
    return n;
  }

  clone(): PagedStore {
    const c = new PagedStore(this.slotCount, this.stride);
    for (let p = 0; p < this.pages.length; p++) {
      const page = this.pages[p];
      if (page) c.pages[p] = page.slice();
    }
    return c;
  }
}
