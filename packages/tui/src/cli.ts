// The `rewind` command. Each command's implementation is imported when it runs, so starting
// the CLI to run a program never loads the terminal UI.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportError } from './commands/errors.js';
import { inputOptions } from './commands/inputs.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('rewind')
  .usage('$0 <command> [options]\n\nRecord and replay eBPF programs: run them in a kernel-faithful VM, record every step, debug forward and backward.')
  .command(
    'demo',
    'Open the time-travel debugger on the bundled XDP firewall run over a bundled pcap (recorded into ./traces/)',
    (y) => y.epilogue('Without a terminal it records the trace, names it and says how to inspect it (exit 0).'),
    async () => {
      const { demo } = await import('./commands/demo.js');
      process.exitCode = await demo();
    },
  )
  .command(
    'replay <trace>',
    'Open a recorded trace in the time-travel debugger (full screen; ? lists the keys)',
    (y) =>
      y
        .positional('trace', { type: 'string', demandOption: true, describe: 'a .rwt trace' })
        .option('at', { type: 'number', describe: 'start at this step' })
        .option('run', { type: 'number', describe: 'start at the first step of this run' })
        .epilogue('Needs a terminal: without one it says to use `rewind inspect <trace> --at N` and exits with 2.'),
    async (argv) => {
      const { replay } = await import('./commands/replay.js');
      process.exitCode = await replay(argv as never);
    },
  )
  .command(
    'debug <program>',
    'Record a program (.o, .data, or .c compiled with clang -target bpf) on its inputs into ./traces/ and open the debugger',
    (y) =>
      inputOptions(y)
        .example('$0 debug examples/xdp-firewall/xdp-firewall.o --pcap examples/pcaps/mixed.pcap --maps examples/xdp-firewall/maps.json', '')
        .epilogue('Traces are named ./traces/<program>-<n>.rwt and never overwritten. Without a terminal it records, names the trace and exits 0.'),
    async (argv) => {
      const { debug } = await import('./commands/debug.js');
      process.exitCode = await debug(argv as never);
    },
  )
  .command(
    'run <program>',
    'Run a program on packets, a context or memory, and print each run\'s verdict and output',
    (y) =>
      inputOptions(y)
        .option('json', { type: 'boolean', default: false, describe: 'print {"runs":[...],"maps":{...}} as JSON' })
        .option('dump-maps', { type: 'string', describe: 'print these maps after the runs (comma-separated names)' })
        .example('$0 run examples/xdp-firewall/xdp-firewall.o --pcap examples/pcaps/mixed.pcap', '')
        .example('$0 run prog.o --section xdp --packet-hex "ffffffffffff..." --json', ''),
    async (argv) => {
      const { run } = await import('./commands/run.js');
      process.exitCode = await run(argv as never);
    },
  )
  .command(
    'record <program>',
    'Run a program on its inputs (as `rewind run`) and record every step into a .rwt trace',
    (y) =>
      inputOptions(y)
        .option('output', { alias: 'o', type: 'string', describe: 'the trace file (default: traces/<program>-<n>.rwt, never overwritten)' })
        .option('runs', { type: 'string', describe: 'record only these runs, e.g. 0,3,10-20 (all run; the others are not recorded)' })
        .option('runs-if', { type: 'string', describe: 'record only the runs that end with a verdict: verdict=XDP_DROP' })
        .example('$0 record examples/xdp-firewall/xdp-firewall.o --pcap examples/pcaps/mixed.pcap --maps examples/xdp-firewall/maps.json', '')
        .example('$0 record prog.o --pcap big.pcap --runs-if verdict=XDP_DROP -o drops.rwt', '')
        .epilogue('Prints a one-line summary (runs, steps, bytes, bytes per step); a progress bar on a terminal.'),
    async (argv) => {
      const { record } = await import('./commands/record.js');
      process.exitCode = await record(argv as never);
    },
  )
  .command(
    'inspect <trace>',
    'Print the state at a step of a trace (--at N), or its runs (--summary, the default)',
    (y) =>
      y
        .positional('trace', { type: 'string', demandOption: true, describe: 'a .rwt trace' })
        .option('at', { type: 'number', describe: 'the step to show (with --run: counted from that run\'s first step)' })
        .option('run', { type: 'number', describe: 'count --at from this run\'s first step' })
        .option('summary', { type: 'boolean', default: false, describe: 'runs with their verdicts and step ranges, totals, file size' })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON: {"step","run","pc","insn","regs","source","stack","maps"} or {"steps","runs","bytes"}' }),
    async (argv) => {
      const { inspect } = await import('./commands/inspect.js');
      process.exitCode = await inspect(argv as never);
    },
  )
  .command(
    'verify <trace>',
    'Re-execute a trace\'s runs from its recorded inputs and check every step against it',
    (y) => y.positional('trace', { type: 'string', demandOption: true, describe: 'a .rwt trace' }).epilogue('Exit status: 0 every step agrees, 1 a difference (named), 2 bad arguments.'),
    async (argv) => {
      const { verify } = await import('./commands/verify.js');
      process.exitCode = await verify(argv as never);
    },
  )
  .command(
    'kernel-diff <program>',
    'Run a program in Rewind and in the Linux kernel (bpftool, test runs) on the same inputs and report every difference',
    (y) =>
      inputOptions(y)
        .option('json', { type: 'boolean', default: false, describe: 'print the comparison as JSON' })
        .epilogue('Exit status: 0 they agree, 1 they differ, 2 bad arguments, 4 the bpf() syscall, bpftool or root is missing.'),
    async (argv) => {
      const { kernelDiff } = await import('./commands/kernel-diff.js');
      process.exitCode = await kernelDiff(argv as never);
    },
  )
  .command(
    'test <paths..>',
    'Run declarative tests: .data files (uBPF, bpf_conformance) and *.rewind.json specs; a line per test, a summary',
    (y) =>
      y
        .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'test files or folders (searched for .data and *.rewind.json)' })
        .option('record-failures', { type: 'string', describe: 'keep a trace of each failing test in this folder and print the command that opens it' })
        .example('$0 test examples/specs', '')
        .example('$0 test ../shared/bpf-tests/ubpf --record-failures traces/failures', '')
        .epilogue('Exit status: 0 all passed, 1 a test failed, 2 a file is not a valid test. The spec format is in packages/tui/TESTS.md.'),
    async (argv) => {
      const { test } = await import('./commands/test.js');
      process.exitCode = await test(argv as never);
    },
  )
  .command(
    'conformance-plugin [memory..]',
    'Run one program as a bpf_conformance plugin: r1 = memory, r2 = its length; prints r0 in hex',
    (y) =>
      y
        .positional('memory', { type: 'string', array: true, describe: 'input memory as hex bytes (spaces allowed)' })
        .option('program', { type: 'string', describe: 'the program as hex bytes (default: read from standard input)' })
        .option('max-steps', { type: 'number', describe: 'instruction budget of the run' }),
    async (argv) => {
      const { main } = await import('./commands/conformance-plugin.js');
      const args = [...(argv.memory ?? [])];
      if (argv.program !== undefined) args.push('--program', argv.program);
      if (argv.maxSteps !== undefined) args.push('--max-steps', String(argv.maxSteps));
      process.exitCode = await main(args);
    },
  )
  .demandCommand(1, 'Name a command; `rewind --help` lists them.')
  .strict()
  .recommendCommands()
  .help()
  .alias('h', 'help')
  .version(false)
  .wrap(Math.min(110, process.stdout.columns || 80))
  .fail((msg, err, y) => {
    if (err) throw err;
    process.stderr.write(`rewind: ${msg}\n(rewind --help lists commands and options)\n`);
    process.exit(2);
  });

try {
  await cli.parseAsync();
} catch (e) {
  process.exitCode = reportError(e);
}
