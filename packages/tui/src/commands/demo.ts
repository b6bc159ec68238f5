// `rewind demo`: records the bundled XDP firewall over the bundled pcap and opens the debugger on it.

import { fileURLToPath } from 'node:url';
import { debug } from './debug.js';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../../../examples/', import.meta.url));

/** The demo's inputs: the firewall, its rules, and a capture with passed and dropped packets. */
export const DEMO_INPUTS = {
  program: `${EXAMPLES_DIR}xdp-firewall/xdp-firewall.o`,
  maps: `${EXAMPLES_DIR}xdp-firewall/maps.json`,
  pcap: `${EXAMPLES_DIR}pcaps/mixed.pcap`,
};

export async function demo(opts: { tracesDir?: string } = {}): Promise<number> {
  return debug({ ...DEMO_INPUTS, repeat: 1, cpus: 1, cpu: 0, seed: 0 }, { command: 'demo', tracesDir: opts.tracesDir });
}
