// Writes examples/specs/*.rewind.json from examples/kernel-results.json: the verdicts, rewritten
// packets, map contents, ring buffer records and bpf_printk lines the Linux kernel gave
// (check-kernel.mjs). Run it after check-kernel.mjs changes the results:
//   node examples/specs/make-specs.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const K = JSON.parse(readFileSync(new URL('../kernel-results.json', import.meta.url), 'utf8'));
const out = fileURLToPath(new URL('.', import.meta.url));
const mapsOf = (m) => Object.fromEntries(Object.entries(m).filter(([, e]) => e.length).map(([n, e]) => [n, e.map(({ key, value }) => ({ key, value }))]));
function spec(column, extra = {}) {
  const r = K[column];
  const tests = [];
  for (const [cap, c] of Object.entries(r.captures)) {
    for (const p of c.packets) {
      const t = { name: `${cap} #${p.index}: ${p.desc}`, packet: { pcap: `../pcaps/${cap}`, index: p.index }, expect: { verdict: p.verdict } };
      if (p.out) t.expect.packet = p.out;
      tests.push(t);
    }
    const all = { name: `${cap}: every packet in order, then the maps`, packets: { pcap: `../pcaps/${cap}` }, expect: { verdicts: c.packets.map((p) => p.verdict), maps: mapsOf(c.maps) } };
    if (!Object.keys(all.expect.maps).length) delete all.expect.maps;
    tests.push(all);
  }
  return { description: `${r.example}: the Linux kernel's verdicts${r.maps ? ` with ${r.maps}` : ''} (examples/kernel-results.json)`, program: `../${r.example}/${r.example}.o`, ...(r.prog ? { section: r.prog } : {}), ...(r.maps ? { maps: `../${r.maps}` } : {}), ...extra, tests };
}
const w = (name, s) => writeFileSync(`${out}${name}.rewind.json`, JSON.stringify(s, null, 2) + '\n');
w('xdp-firewall', spec('xdp-firewall'));
w('xdp-firewall-maps', spec('xdp-firewall+maps'));
w('l4-lb', spec('l4-lb'));
w('l4-lb-maps', spec('l4-lb+maps'));
w('pkt-parser', spec('pkt-parser'));
w('tail-pipeline', spec('tail-pipeline'));
// tc-ratelimit's verdicts depend on the clock following the capture: only the whole-capture test means anything.
const tc = spec('tc-ratelimit');
tc.tests = tc.tests.filter((t) => t.packets);
w('tc-ratelimit', tc);
// ringbuf-events: the kernel's records have ts_ns zeroed and ifindex 1 (test runs come in on lo).
const rb = K['ringbuf-events'];
const tests = [];
for (const [cap, c] of Object.entries(rb.captures)) {
  // The order of the output across packets, from examples/README.md: records and printk lines as the packets produce them.
  const order = cap === 'mixed.pcap' ? ['e', 'e', 'p', 'e', 'e', 'e', 'p', 'e'] : ['e', 'e', 'p', 'e'];
  let e = 0, p = 0;
  const output = order.map((k) => (k === 'e' ? { ringbuf: 'events', data: c.events[e++].record } : { printk: c.printk[p++] }));
  if (e !== c.events.length || p !== c.printk.length) throw new Error(`${cap}: order does not cover the output`);
  tests.push({ name: `${cap}: every packet passes; the ring buffer records and printk lines`, packets: { pcap: `../pcaps/${cap}` }, ctx: { ingress_ifindex: 1 }, time: 0, expect: { verdicts: c.packets.map((x) => x.verdict), output } });
}
w('ringbuf-events', { description: 'ringbuf-events: the Linux kernel\'s records (ts_ns zeroed) and bpf_printk lines (examples/kernel-results.json)', program: '../ringbuf-events/ringbuf-events.o', section: rb.prog, tests });
