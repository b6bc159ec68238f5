// Runs every example in the Linux kernel on its captures and compares each verdict with the
// one the example was designed to give (pcaps/expected.json). The kernel is the reference
// Rewind is checked against: each program must pass the real verifier, and its verdicts,
// rewritten packets and map contents after a run are written to kernel-results.json.
//
//   sudo node examples/check-kernel.mjs        (after `npx tsc -b`, examples/build.sh and
//                                               node examples/pcaps/make-pcaps.mjs)
//
// Needs root and bpftool. It mounts a private bpffs under /tmp, loads each object with
// `bpftool prog loadall`, runs the packets with `bpftool prog run ... repeat 1` (batched, so
// packets close together in a capture run close together in time, and sleeping across the
// capture's longer gaps for tc-ratelimit's clock), then unpins everything and unmounts.
// Programs are never attached to an interface.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { internetChecksum, readCapture, transportChecksum } from '../packages/vm/dist/packet/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BPFTOOL = process.env.BPFTOOL ?? 'bpftool';

/** One kernel run: a fresh load of the object, optionally its maps.json, then the captures. */
const RUNS = [
  { column: 'xdp-firewall', example: 'xdp-firewall', prog: 'xdp_firewall', type: 'xdp', pcaps: ['mixed.pcap', 'any-sll2.pcap'] },
  { column: 'xdp-firewall+maps', example: 'xdp-firewall', prog: 'xdp_firewall', type: 'xdp', maps: true, pcaps: ['mixed.pcap', 'any-sll2.pcap'] },
  { column: 'l4-lb', example: 'l4-lb', prog: 'xdp_lb', type: 'xdp', pcaps: ['lb.pcap'] },
  { column: 'l4-lb+maps', example: 'l4-lb', prog: 'xdp_lb', type: 'xdp', maps: true, pcaps: ['lb.pcap'] },
  { column: 'pkt-parser', example: 'pkt-parser', prog: 'xdp_parser', type: 'xdp', pcaps: ['parser.pcap'] },
  { column: 'tc-ratelimit', example: 'tc-ratelimit', prog: 'tc_syn_ratelimit', type: 'tc', pcaps: ['syn-flood.pcap'] },
  { column: 'tail-pipeline', example: 'tail-pipeline', prog: 'xdp_entry', type: 'xdp', pcaps: ['mixed.pcap'] },
  { column: 'ringbuf-events', example: 'ringbuf-events', prog: 'xdp_events', type: 'xdp', pcaps: ['mixed.pcap', 'events.pcapng'], ringbuf: 'events', printk: true },
];

/** Maps left out of the results: contents that depend on the wall clock (syn_buckets) or on
 * which CPU ran the last packet (scratch), or that are not data (events, jmp_table). */
const UNDUMPED = new Set(['syn_buckets', 'scratch', 'events', 'jmp_table']);

const VERDICTS = {
  xdp: ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'],
  // TC_ACT_UNSPEC is -1; the others count up from TC_ACT_OK.
  tc: { '-1': 'TC_ACT_UNSPEC', 0: 'TC_ACT_OK', 1: 'TC_ACT_RECLASSIFY', 2: 'TC_ACT_SHOT', 3: 'TC_ACT_PIPE', 4: 'TC_ACT_STOLEN', 5: 'TC_ACT_QUEUED', 6: 'TC_ACT_REPEAT', 7: 'TC_ACT_REDIRECT' },
};

/** Packets further apart than this in a capture run in separate batches, that far apart. */
const GAP_NS = 50_000_000n;

const hex = (b) => Buffer.from(b).toString('hex');
const hexArgs = (h) => h.match(/../g).join(' ');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function bpftool(args, json = true) {
  const out = execFileSync(BPFTOOL, json ? ['-j', ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return json ? JSON.parse(out) : out;
}

const fromBytes = (arr) => Uint8Array.from(arr.map((s) => parseInt(s, 16)));

/** A map's entries as hex, leaving out all-zero values (an array has every key); per-CPU
 * values become the sum over CPUs of their u64 words, as the CPU that runs a packet varies. */
function dumpMap(path) {
  const entries = bpftool(['map', 'dump', 'pinned', path]).map((e) => {
    if (e.value) return { key: hex(fromBytes(e.key)), value: hex(fromBytes(e.value)) };
    const sum = new BigUint64Array(e.values[0].value.length / 8);
    for (const v of e.values) {
      const words = new BigUint64Array(fromBytes(v.value).buffer);
      words.forEach((w, i) => (sum[i] += w));
    }
    return { key: hex(fromBytes(e.key)), value: hex(new Uint8Array(sum.buffer)), perCpuSum: true };
  });
  // Sorted by key: a hash map dumps in the order of its (randomly seeded) buckets.
  return entries.filter((e) => /[^0]/.test(e.value)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// --- l4-lb: what a correct XDP_TX rewrite looks like -----------------------------------------

const ipStr = (b, at) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const macStr = (b, at) => [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** The backends each VIP may send to: the compiled-in ones, and those of maps.json. */
function lbBackends(withMaps) {
  const vips = new Map([['192.0.2.10:80/6', [
    { addr: '10.1.0.1', mac: '02:00:0a:01:00:01' },
    { addr: '10.1.0.2', mac: '02:00:0a:01:00:02' },
  ]]]);
  if (!withMaps) return vips;
  const maps = JSON.parse(readFileSync(join(HERE, 'l4-lb/maps.json'), 'utf8'));
  const backends = maps.backends.map((e) => {
    const v = Buffer.from(e.value, 'hex');
    return { index: Buffer.from(e.key, 'hex').readUInt32LE(0), addr: ipStr(v, 0), mac: macStr(v, 4) };
  });
  for (const e of maps.vips) {
    const k = Buffer.from(e.key, 'hex');
    const v = Buffer.from(e.value, 'hex');
    const first = v.readUInt32LE(0);
    const count = v.readUInt32LE(4);
    vips.set(`${ipStr(k, 0)}:${k.readUInt16BE(4)}/${k[6]}`, backends.filter((b) => b.index >= first && b.index < first + count));
  }
  return vips;
}

/** Checks an XDP_TX output of l4-lb against its input; returns the backend's address. */
function checkLbRewrite(input, output, vips, what) {
  const fail = (m) => {
    throw new Error(`${what}: ${m}`);
  };
  if (output.length !== input.length) fail(`output is ${output.length} bytes, input ${input.length}`);
  const ihl = (input[14] & 0xf) * 4;
  const proto = input[23];
  const l4 = 14 + ihl;
  const dport = (input[l4 + 2] << 8) | input[l4 + 3];
  const vip = `${ipStr(input, 30)}:${dport}/${proto}`;
  const candidates = vips.get(vip) ?? fail(`XDP_TX for ${vip}, which is no VIP`);
  const be = candidates.find((b) => b.addr === ipStr(output, 30)) ?? fail(`destination ${ipStr(output, 30)} is none of ${vip}'s backends`);
  if (macStr(output, 0) !== be.mac) fail(`destination MAC ${macStr(output, 0)}, backend ${be.addr} has ${be.mac}`);
  if (macStr(output, 6) !== macStr(input, 0)) fail(`source MAC ${macStr(output, 6)}, expected the input's destination ${macStr(input, 0)}`);
  if (internetChecksum(output.subarray(14, l4)) !== 0) fail('IPv4 header checksum is wrong');
  const csumAt = l4 + (proto === 6 ? 16 : 6);
  const got = (output[csumAt] << 8) | output[csumAt + 1];
  if (proto === 17 && ((input[csumAt] << 8) | input[csumAt + 1]) === 0) {
    if (got !== 0) fail('a zero UDP checksum was rewritten');
  } else {
    const seg = output.slice(l4);
    const want = transportChecksum(output.subarray(26, 30), output.subarray(30, 34), proto, seg);
    if (got !== want) fail(`${proto === 6 ? 'TCP' : 'UDP'} checksum 0x${got.toString(16)}, expected 0x${want.toString(16)}`);
  }
  // Apart from the MACs, the destination address and the checksums, nothing changes.
  const changed = new Set([...Array(12).keys(), 24, 25, 30, 31, 32, 33, csumAt, csumAt + 1]);
  for (let i = 0; i < input.length; i++) if (!changed.has(i) && input[i] !== output[i]) fail(`byte ${i} changed`);
  return be.addr;
}

// --- ringbuf-events: what it reported --------------------------------------------------------

const EVENT_TYPES = { 1: 'EVENT_TCP_SYN', 2: 'EVENT_DNS_QUERY' };

/** Decodes a record of ringbuf-events (struct syn_event or struct dns_event), less its clock. */
function decodeEvent(h) {
  const b = Buffer.from(h, 'hex');
  const type = EVENT_TYPES[b.readUInt32LE(8)] ?? `type ${b.readUInt32LE(8)}`;
  const e = { type, ifindex: b.readUInt32LE(12), saddr: ipStr(b, 16) };
  if (type === 'EVENT_TCP_SYN') {
    Object.assign(e, { daddr: ipStr(b, 20), sport: b.readUInt16BE(24), dport: b.readUInt16BE(26), ttl: b[28], window: b.readUInt16LE(30), seq: b.readUInt32LE(32) });
  } else if (type === 'EVENT_DNS_QUERY') {
    const qname = b.subarray(28, 60);
    Object.assign(e, { sport: b.readUInt16BE(20), id: b.readUInt16LE(22), flags: b.readUInt16LE(24), qdcount: b.readUInt16LE(26), qname: hex(qname.subarray(0, qname.indexOf(0) < 0 ? 32 : qname.indexOf(0))) });
  }
  // ts_ns is bpf_ktime_get_ns() of this run: zeroed so the record compares across runs.
  b.fill(0, 0, 8);
  return { ...e, record: hex(b) };
}

/** bpf_printk() lines in the kernel's trace buffer, read through a tracefs mounted at `dir`. */
function tracePrintk(dir) {
  return readFileSync(join(dir, 'trace'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('bpf_trace_printk: icmp echo request'))
    .map((l) => l.slice(l.indexOf('bpf_trace_printk: ') + 'bpf_trace_printk: '.length));
}

// --- running ---------------------------------------------------------------------------------

const expected = JSON.parse(readFileSync(join(HERE, 'pcaps/expected.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'rw-ex-'));
const fs = join(work, 'bpffs');
mkdirSync(fs);
execFileSync('mount', ['-t', 'bpf', 'bpf', fs]);
// tracefs, to read what bpf_printk() wrote; reading `trace` leaves the buffer as it was.
const tracefs = join(work, 'tracefs');
mkdirSync(tracefs);
execFileSync('mount', ['-t', 'tracefs', 'tracefs', tracefs]);

const results = {};
let failures = 0;
try {
  for (const run of RUNS) {
    const pin = join(fs, run.column.replace(/\W/g, '_'));
    const mapsDir = `${pin}-maps`;
    const runResult = { example: run.example, prog: run.prog, maps: run.maps ? `${run.example}/maps.json` : null, captures: {} };
    results[run.column] = runResult;
    const vips = run.example === 'l4-lb' ? lbBackends(run.maps) : null;
    for (const pcap of run.pcaps) {
      bpftool(['prog', 'loadall', join(HERE, run.example, `${run.example}.o`), pin, 'type', run.type, 'pinmaps', mapsDir], false);
      if (run.maps) {
        const maps = JSON.parse(readFileSync(join(HERE, run.example, 'maps.json'), 'utf8'));
        for (const [name, entries] of Object.entries(maps)) {
          for (const e of entries) {
            bpftool(['map', 'update', 'pinned', join(mapsDir, name), 'key', 'hex', ...hexArgs(e.key).split(' '), 'value', 'hex', ...hexArgs(e.value).split(' ')], false);
          }
        }
      }
      const capture = readCapture(readFileSync(join(HERE, 'pcaps', pcap)), pcap);
      const want = expected[pcap];
      const batches = [];
      let last;
      capture.packets.forEach((p) => {
        if (last === undefined || p.timestampNs - last > GAP_NS) batches.push({ gapNs: last === undefined ? 0n : p.timestampNs - last, packets: [] });
        batches.at(-1).packets.push(p);
        last = p.timestampNs;
      });
      const outcomes = [];
      const printkBefore = run.printk ? tracePrintk(tracefs).length : 0;
      for (const batch of batches) {
        if (batch.gapNs > 0n) sleep(Number(batch.gapNs / 1_000_000n));
        const lines = batch.packets.map((p) => {
          const input = join(work, `in-${p.index}.bin`);
          writeFileSync(input, p.data);
          return `prog run pinned ${join(pin, run.prog)} data_in ${input} data_out ${join(work, `out-${p.index}.bin`)} repeat 1`;
        });
        writeFileSync(join(work, 'batch'), lines.join('\n') + '\n');
        const answers = bpftool(['batch', 'file', join(work, 'batch')]);
        answers.forEach((a, i) => outcomes.push({ packet: batch.packets[i], retval: a.output.retval }));
      }
      const flows = new Map();
      runResult.captures[pcap] = outcomes.map(({ packet, retval }) => {
        const verdict = (run.type === 'xdp' ? VERDICTS.xdp[retval] : VERDICTS.tc[retval]) ?? String(retval);
        const output = new Uint8Array(readFileSync(join(work, `out-${packet.index}.bin`)));
        const design = want[packet.index].expect[run.column];
        const row = { index: packet.index, desc: want[packet.index].desc, retval, verdict };
        const problems = [];
        if (design !== undefined && design !== verdict) problems.push(`designed ${design}, kernel says ${verdict}`);
        if (hex(output) !== hex(packet.data)) {
          row.out = hex(output);
          if (verdict === 'XDP_TX' && vips) {
            try {
              row.backend = checkLbRewrite(packet.data, output, vips, `${pcap} packet ${packet.index}`);
              const flow = hex(packet.data.subarray(26, 38)) + packet.data[23];
              if (flows.has(flow) && flows.get(flow) !== row.backend) problems.push(`flow moved from ${flows.get(flow)} to ${row.backend}`);
              flows.set(flow, row.backend);
            } catch (e) {
              problems.push(e.message);
            }
          } else {
            problems.push('the packet was modified');
          }
        }
        if (problems.length) {
          failures++;
          console.log(`FAIL ${run.column} ${pcap} #${packet.index} (${row.desc}): ${problems.join('; ')}`);
        }
        return row;
      });
      runResult.captures[pcap] = { packets: runResult.captures[pcap], maps: {} };
      if (run.ringbuf) {
        // The events each packet was designed to report, in order, against what the kernel did.
        const designed = want.filter((p) => p.event && p.event !== 'bpf_printk');
        const events = JSON.parse(execFileSync('python3', [join(HERE, 'read-ringbuf.py'), join(mapsDir, run.ringbuf)], { encoding: 'utf8' })).map(decodeEvent);
        runResult.captures[pcap].events = events;
        const got = events.map((e) => `${e.type} from ${e.saddr}`).join(', ');
        const wanted = designed.map((p) => `${p.event} from ${ipStr(capture.packets[p.index].data, 26)}`).join(', ');
        if (got !== wanted) {
          failures++;
          console.log(`FAIL ${run.column} ${pcap}: ring buffer records [${got}], designed [${wanted}]`);
        }
      }
      if (run.printk) {
        const lines = tracePrintk(tracefs).slice(printkBefore);
        runResult.captures[pcap].printk = lines;
        const designed = want.filter((p) => p.event === 'bpf_printk').length;
        if (lines.length !== designed) {
          failures++;
          console.log(`FAIL ${run.column} ${pcap}: ${lines.length} bpf_printk lines, designed ${designed}`);
        }
      }
      for (const name of readdirSync(mapsDir).sort()) {
        if (UNDUMPED.has(name) || name.endsWith('rodata')) continue;
        runResult.captures[pcap].maps[name] = dumpMap(join(mapsDir, name));
      }
      rmSync(pin, { recursive: true, force: true });
      rmSync(mapsDir, { recursive: true, force: true });
      const n = outcomes.length;
      console.log(`${run.column.padEnd(18)} ${pcap.padEnd(15)} ${n} packets: ${outcomes.map((o) => o.retval).join(' ')}`);
    }
  }
} finally {
  execFileSync('umount', [tracefs]);
  execFileSync('umount', [fs]);
  rmSync(work, { recursive: true, force: true });
}

writeFileSync(join(HERE, 'kernel-results.json'), JSON.stringify(results, null, 1) + '\n');
console.log(failures ? `${failures} verdicts differ from the design` : 'every verdict is as designed');
process.exit(failures ? 1 : 0);
