/**
 * @zeroflow/cli as a library: run the `zeroflow` command line in-process, or reuse its commands.
 */
export { type CliIO, type Command, EXIT, UsageError } from './command.js';
export { configCheckCommand } from './commands/config-check.js';
export { COMMANDS, processIO, runCli } from './main.js';
