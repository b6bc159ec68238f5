// The fixture's loaders (.c through clang, .data files) and the matchers' messages, through the
// integration itself.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe } from 'vitest';
import { clangAvailable, compileC, expect, replayCommand, test } from './index.js';
import { slug, TestInputError } from './harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'rewind-harness-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const haveClang = clangAvailable();
if (!haveClang) console.log('skipping the .c tests: no clang (clang-19, clang or $REWIND_CLANG)');

// A program without headers: the context layout is the uapi struct xdp_md's.
const SHORT_DROP = `
struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };
__attribute__((section("xdp"), used)) int drop_short(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  return data + 60 > end ? 1 /* XDP_DROP */ : 2 /* XDP_PASS */;
}
char _license[] __attribute__((section("license"), used)) = "GPL";
`;

describe.skipIf(!haveClang)('.c programs', () => {
  test('compile on the fly and run: a frame shorter than 60 bytes is dropped', ({ bpf }) => {
    const file = join(tmp, 'short.c');
    writeFileSync(file, SHORT_DROP);
    const prog = bpf.load(file);
    expect(prog.program.name).toBe('drop_short');
    expect(prog.run({ packet: new Uint8Array(59) })).toExitWith('XDP_DROP');
    expect(prog.run({ packet: new Uint8Array(60) })).toExitWith('XDP_PASS');
    expect(prog.run({ packet: new Uint8Array(60) })).not.toExitWith('XDP_DROP');
  });

  test('a source that does not compile is a one-line error naming the file', () => {
    const file = join(tmp, 'broken.c');
    writeFileSync(file, 'int f( {');
    expect(() => compileC(file)).toThrow(TestInputError);
    expect(() => compileC(file)).toThrow(/broken\.c: does not compile: /);
  });
});

test('a .data file runs on its -- mem and gives its -- result', ({ bpf }) => {
  const prog = bpf.load(new URL('../../../../examples/asm/tcp-dport.data', import.meta.url));
  // tcp-dport.data: "-- result 0x1" for its IPv4 TCP packet to port 80.
  expect(prog.source.expected).toBe(1n);
  expect(prog.run()).toHaveR0(1n);
});

describe('matcher messages', () => {
  test('name the run, what differed, and the command that opens the trace there', ({ bpf }) => {
    const file = fileURLToPath(new URL('../../../../examples/asm/tcp-dport.data', import.meta.url));
    const prog = bpf.load(file);
    prog.run();
    const second = prog.run({ mem: new Uint8Array(64) });
    // 64 zero bytes: EtherType 0, not IPv4, so r0 = 0.
    expect(() => expect(second).toHaveR0(1)).toThrow(/^run 1: r0 = 0x0, expected 0x1\n {2}open the trace there: rewind replay \S+\.rwt --at \d+$/);
    expect(() => expect(second).toExitWith('XDP_PASS')).toThrow(/run 1: exited with 0 \(r0 = 0x0\), expected XDP_PASS/);
    expect(() => expect(second).not.toHaveR0(0)).toThrow(/run 1: r0 = 0, expected otherwise/);
    expect(() => expect(prog).toHaveMapEntry('nope', 0)).toThrow(/no map 'nope'/);
    expect(() => expect({}).toExitWith('XDP_PASS')).toThrow(/toExitWith: expected a run/);
  });
});

test('trace names and commands', () => {
  expect(slug('mixed.pcap #4: TCP SYN 198.51.100.7 → 10.0.0.1:22')).toBe('mixed.pcap-4-TCP-SYN-198.51.100.7-10.0.0.1-22');
  expect(replayCommand('traces/failures/a.rwt', 7)).toBe('rewind replay traces/failures/a.rwt --at 7');
  expect(replayCommand("dir with space/it's.rwt", 7)).toBe(`rewind replay 'dir with space/it'\\''s.rwt' --at 7`);
});

const SACK = fileURLToPath(new URL('../../../../../shared/bpf-tests/ubpf/tcp-sack/match.data', import.meta.url));
const haveShared = existsSync(SACK);
if (!haveShared) console.log(`skipping the uBPF include test: ${SACK} is missing`);

test.skipIf(!haveShared)('a .data file by absolute path takes its `-- asm @ file` and `-- mem @ file` from its own folder', ({ bpf }) => {
  const prog = bpf.load(SACK);
  // match.data: "-- result 0x1" (the packet carries a TCP SACK option).
  expect(prog.source.expected).toBe(1n);
  expect(prog.run()).toHaveR0(1);
});
