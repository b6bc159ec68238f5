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
    'Run the bundled example program and show what it did',
    (y) => y,
    async () => {
      const { demo } = await import('./commands/demo.js');
      process.exitCode = await demo();
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
