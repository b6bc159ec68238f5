// bpf_get_prandom_u32's source in Rewind: a seeded generator (SplitMix32-style mixing of a
// Weyl sequence), so runs are reproducible. The kernel uses a per-CPU PRNG seeded at boot.

export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  get seedState(): number {
    return this.state;
  }
  set seedState(v: number) {
    this.state = v >>> 0;
  }
}
