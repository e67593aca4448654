/**
 * What every `zeroflow` subcommand implements. Commands write through {@link CliIO} rather than to
 * process.stdout directly so tests and embedding programs can capture their output.
 */

/** Where a command writes. Each call writes one chunk of text as is (callers add newlines). */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Writes to the process's streams (their answers report backpressure to callers that look). */
export const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Exit statuses of the zeroflow command. */
export const EXIT = {
  ok: 0,
  /** An error that is not the user's config: I/O failure, internal error. */
  failure: 1,
  /** The config (or another input file) is invalid. */
  invalidInput: 2,
  /** Bad command line (BSD sysexits EX_USAGE). */
  usage: 64,
} as const;

/** A command line the user got wrong: the message is shown with the command's usage, without a stack. */
export class UsageError extends Error {}

/** One subcommand, e.g. `config check`. */
export interface Command {
  /** Words that select it: `['config', 'check']`. */
  readonly path: readonly string[];
  /** One line for `zeroflow --help`. */
  readonly summary: string;
  /** Full help text: synopsis and options. */
  readonly usage: string;
  /** Runs with the arguments after the command's path; returns the exit status. */
  run(args: string[], io: CliIO): Promise<number> | number;
}
