/**
 * The `zeroflow` command line: finds the subcommand named by the first words of argv and runs it. New
 * commands (run, report, estimate, ckpt ...) are added to {@link COMMANDS}.
 */
import { CORE_VERSION, didYouMean, ZeroFlowError } from '@zeroflow/core';
import { type CliIO, type Command, EXIT, processIO, UsageError } from './command.js';
import { ckptExportCommand } from './commands/ckpt-export.js';
import { configCheckCommand } from './commands/config-check.js';
import { estimateCommand } from './commands/estimate.js';
import { reportCommand } from './commands/report.js';
import { runCommand } from './commands/run.js';

/** Every subcommand, in the order `zeroflow --help` lists them. */
export const COMMANDS: readonly Command[] = [
  runCommand,
  reportCommand,
  configCheckCommand,
  estimateCommand,
  ckptExportCommand,
];

export { processIO };

function helpText(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  const lines = commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`);
  return `Usage: zeroflow <command> [options]

Commands:
${lines.join('\n')}

Run "zeroflow <command> --help" for a command's options.
`;
}

/** The command whose path is the longest prefix of `argv`. */
function findCommand(argv: string[]): Command | undefined {
  let best: Command | undefined;
  for (const command of COMMANDS) {
    const matches = command.path.every((word, i) => argv[i] === word);
    if (matches && (!best || command.path.length > best.path.length)) best = command;
  }
  return best;
}

/** Why nothing matched: an unknown word, with a suggestion from the words that would have been valid. */
function unknownCommand(argv: string[]): UsageError {
  const depth = COMMANDS.reduce((d, c) => {
    let i = 0;
    while (i < c.path.length && argv[i] === c.path[i]) i++;
    return Math.max(d, i);
  }, 0);
  const prefix = argv.slice(0, depth);
  const candidates = COMMANDS.filter((c) => prefix.every((w, i) => c.path[i] === w)).map((c) => c.path[depth]);
  const word = argv[depth];
  if (word === undefined) {
    return new UsageError(`"${prefix.join(' ')}" needs a subcommand: ${[...new Set(candidates)].join(', ')}`);
  }
  const hint = didYouMean(word, candidates);
  return new UsageError(`unknown command "${[...prefix, word].join(' ')}"${hint ? ` (${hint})` : ''}`);
}

/**
 * Runs the zeroflow command line and returns the exit status. User errors (bad arguments, invalid configs,
 * ZeroFlow errors) are printed as messages; only unexpected errors show a stack trace.
 */
export async function runCli(argv: string[], io: CliIO = processIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(helpText(COMMANDS));
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    io.stdout(`zeroflow (core ${CORE_VERSION})\n`);
    return EXIT.ok;
  }
  const command = findCommand(argv);
  try {
    if (!command) throw unknownCommand(argv);
    return await command.run(argv.slice(command.path.length), io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`zeroflow: ${err.message}\n\n${command ? command.usage : helpText(COMMANDS)}\n`);
      return EXIT.usage;
    }
    if (err instanceof ZeroFlowError) {
      io.stderr(`zeroflow: ${err.message}\n`);
      return EXIT.failure;
    }
    io.stderr(`zeroflow: internal error (please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.failure;
  }
}
