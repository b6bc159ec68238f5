// Redirect targets in the run's outcome. The verdicts themselves are compared with the kernel in
// kernel.test.ts; the kernel's test run does not report where a redirect would go.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadObject } from '../../elf/index.js';
import { CpuMap, DevMap } from '../../maps/dev_maps.js';
import { Session } from '../session.js';

function session(): Session {
  const file = fileURLToPath(new URL('./fixtures/redirect.o', import.meta.url));
  const o = loadObject(readFileSync(file), file);
  return new Session(o.programs, o.maps, { cpus: 2 });
}

const cmd = (op: number, arg: number, flags: number) => {
  const p = new Uint8Array(60);
  p.set([op, arg & 0xff, (arg >>> 8) & 0xff, (arg >>> 16) & 0xff, arg >>> 24, flags], 14);
  return p;
};

describe('redirect targets', () => {
  it('bpf_redirect from XDP and tc names the device and the flags', () => {
    const s = session();
    expect(s.run('xdp_redirect', { packet: cmd(0, 5, 0) })).toMatchObject({ verdict: 'XDP_REDIRECT', redirect: { ifindex: 5, flags: 0 } });
    expect(s.run('tc_redirect', { packet: cmd(0, 9, 1) })).toMatchObject({ verdict: 'TC_ACT_REDIRECT', redirect: { ifindex: 9, flags: 1 } });
    // bpf_redirect_peer: the kernel's internal BPF_F_PEER.
    expect(s.run('tc_redirect', { packet: cmd(2, 9, 0) })).toMatchObject({ verdict: 'TC_ACT_REDIRECT', redirect: { ifindex: 9, flags: 1 << 17 } });
  });

  it('names nothing when the helper refuses its flags', () => {
    const s = session();
    const xdp = s.run('xdp_redirect', { packet: cmd(0, 5, 1) });
    expect(xdp.verdict).toBe('XDP_ABORTED');
    expect(xdp.redirect).toBeUndefined();
    const tc = s.run('tc_redirect', { packet: cmd(0, 5, 2) });
    expect(tc.verdict).toBe('TC_ACT_SHOT');
    expect(tc.redirect).toBeUndefined();
  });

  it('bpf_redirect_map names the map and key of a device or CPU that is there', () => {
    const s = session();
    (s.maps.find((m) => m.name === 'devs') as DevMap<unknown>).setSlot(3, 7);
    (s.maps.find((m) => m.name === 'cpus') as CpuMap<unknown>).setSlot(1, 192);
    expect(s.run('xdp_redirect', { packet: cmd(1, 3, 0) })).toMatchObject({ verdict: 'XDP_REDIRECT', redirect: { map: 'devs', key: 3, flags: 0 } });
    expect(s.run('xdp_redirect', { packet: cmd(2, 1, 0) })).toMatchObject({ verdict: 'XDP_REDIRECT', redirect: { map: 'cpus', key: 1, flags: 0 } });
  });

  it('returns the low bits of the flags when the lookup fails, except for a broadcast', () => {
    const s = session();
    const miss = s.run('xdp_redirect', { packet: cmd(1, 4, 2) });
    expect(miss.verdict).toBe('XDP_PASS');
    expect(miss.redirect).toBeUndefined();
    expect(s.run('xdp_redirect', { packet: cmd(1, 4, 8) })).toMatchObject({ verdict: 'XDP_REDIRECT', redirect: { map: 'devs', key: 4, flags: 8 } });
    // BPF_F_BROADCAST is not a cpumap flag.
    expect(s.run('xdp_redirect', { packet: cmd(2, 1, 8) }).verdict).toBe('XDP_ABORTED');
  });
});
