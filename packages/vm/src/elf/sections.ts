// Program types from ELF section names, following libbpf's section_defs
// (tools/lib/bpf/libbpf.c) for the program types Rewind runs.

import type { ProgType } from '../program.js';

/**
 * libbpf ≥ 1.0 patterns: `name` matches exactly, `name+` matches `name` or `name/...`,
 * and `name/` matches any `name/...`. In libbpf's order, since the first match wins.
 */
const SECTION_DEFS: readonly (readonly [string, ProgType])[] = [
  ['socket', 'socket'],
  ['kprobe+', 'kprobe'],
  ['uprobe+', 'kprobe'],
  ['uprobe.s+', 'kprobe'],
  ['kretprobe+', 'kprobe'],
  ['uretprobe+', 'kprobe'],
  ['uretprobe.s+', 'kprobe'],
  ['kprobe.multi+', 'kprobe'],
  ['kretprobe.multi+', 'kprobe'],
  ['uprobe.multi+', 'kprobe'],
  ['uretprobe.multi+', 'kprobe'],
  ['uprobe.multi.s+', 'kprobe'],
  ['uretprobe.multi.s+', 'kprobe'],
  ['ksyscall+', 'kprobe'],
  ['kretsyscall+', 'kprobe'],
  ['usdt+', 'kprobe'],
  ['usdt.s+', 'kprobe'],
  ['tc/ingress', 'tc'],
  ['tc/egress', 'tc'],
  ['tcx/ingress', 'tc'],
  ['tcx/egress', 'tc'],
  ['tc', 'tc'],
  ['classifier', 'tc'],
  ['action', 'tc'],
  ['netkit/primary', 'tc'],
  ['netkit/peer', 'tc'],
  ['tracepoint+', 'tracepoint'],
  ['tp+', 'tracepoint'],
  ['xdp.frags/devmap', 'xdp'],
  ['xdp/devmap', 'xdp'],
  ['xdp.frags/cpumap', 'xdp'],
  ['xdp/cpumap', 'xdp'],
  ['xdp.frags', 'xdp'],
  ['xdp', 'xdp'],
  ['perf_event', 'perf_event'],
  ['cgroup_skb/ingress', 'cgroup_skb'],
  ['cgroup_skb/egress', 'cgroup_skb'],
  ['cgroup/skb', 'cgroup_skb'],
];

/**
 * libbpf before 1.0 matched every definition as a plain prefix, and objects written
 * for it still use sections like `xdp_pass`, `xdp/redirect` or `classifier/egress`.
 */
const LEGACY_PREFIXES: readonly (readonly [string, ProgType])[] = [
  ['socket', 'socket'],
  ['kprobe/', 'kprobe'],
  ['kretprobe/', 'kprobe'],
  ['uprobe/', 'kprobe'],
  ['uretprobe/', 'kprobe'],
  ['tc', 'tc'],
  ['classifier', 'tc'],
  ['action', 'tc'],
  ['tracepoint/', 'tracepoint'],
  ['tp/', 'tracepoint'],
  ['xdp', 'xdp'],
  ['perf_event', 'perf_event'],
  ['cgroup_skb/', 'cgroup_skb'],
  ['cgroup/skb', 'cgroup_skb'],
];

function matches(pattern: string, name: string): boolean {
  if (pattern.endsWith('/')) return name.startsWith(pattern);
  if (pattern.endsWith('+')) {
    const p = pattern.slice(0, -1);
    return name === p || name.startsWith(`${p}/`);
  }
  return name === pattern;
}

/**
 * The program type libbpf would give a program in section `section`, or undefined when
 * the section names no type Rewind runs. A leading `?` (libbpf's "don't autoload") is ignored.
 */
export function progTypeForSection(section: string): ProgType | undefined {
  const name = section.startsWith('?') ? section.slice(1) : section;
  for (const [pattern, type] of SECTION_DEFS) if (matches(pattern, name)) return type;
  for (const [prefix, type] of LEGACY_PREFIXES) if (name.startsWith(prefix)) return type;
  return undefined;
}
