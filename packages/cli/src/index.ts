/**
 * @zeroflow/cli as a library: run the `zeroflow` command line in-process, or reuse its commands.
 */
export { type CliIO, type Command, EXIT, UsageError } from './command.js';
export { configCheckCommand } from './commands/config-check.js';
export { collectReport, type EnvironmentReport, reportCommand } from './commands/report.js';
export { runCommand } from './commands/run.js';
export { HostfileError, type HostSlots, parseHostfile, parseHostSelection, selectHosts } from './launcher/hostfile.js';
export {
  type CommandLine,
  formatCommand,
  LaunchError,
  type LauncherKind,
  type LaunchPlan,
  mpirunCommand,
  planNodes,
  rankCommands,
  srunCommand,
  sshCommands,
} from './launcher/plan.js';
export { COMMANDS, processIO, runCli } from './main.js';
