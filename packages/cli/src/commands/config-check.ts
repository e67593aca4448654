/**
 * `zeroflow config check <file> [--world N] [--json]`: validates a DeepSpeed-style config the way `initialize`
 * will, and prints it with every default filled in, or every problem found.
 */
import { parseArgs } from 'node:util';
import { ConfigError, formatConfigIssue, requiredPluginPackages, resolveConfig } from '@zeroflow/core';
import { type CliIO, type Command, EXIT, UsageError } from '../command.js';

const USAGE = `Usage: zeroflow config check <file> [--world N] [--dp N] [--json]

Validates a DeepSpeed-style config file (JSON, comments allowed) and prints it with every default
filled in and the batch sizes inferred, or every problem found (exit status 2).

Options:
  --world N   world size (number of ranks) the batch rule is checked for (default 1)
  --dp N      data-parallel size, when it differs from the world size (default: the world size)
  --json      print one JSON object: {"valid": true, "config": ..., "requiredPlugins": [...]}
              or {"valid": false, "issues": [...]}
  -h, --help  show this help`;

function positiveInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  }
  return value;
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        world: { type: 'string' },
        dp: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    // node:util parseArgs reports unknown options and missing values as TypeErrors with ERR_PARSE_ARGS_* codes.
    throw new UsageError((err as Error).message);
  }
}

/** JSON.stringify that keeps `undefined` visible (a missing value in an issue). */
function issueJson(issue: ConfigError['issues'][number]) {
  return { ...issue, value: issue.value === undefined ? null : issue.value };
}

async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args);
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? 'missing <file>' : `expected one <file>, got ${positionals.length}`,
    );
  }
  const file = positionals[0];
  const worldSize = positiveInteger('--world', values.world) ?? 1;
  const dataParallelSize = positiveInteger('--dp', values.dp) ?? worldSize;
  if (worldSize % dataParallelSize !== 0) {
    throw new UsageError(`--dp (${dataParallelSize}) must divide --world (${worldSize})`);
  }

  try {
    const config = resolveConfig(file, { worldSize, dataParallelSize });
    const requiredPlugins = requiredPluginPackages(config);
    if (values.json) {
      io.stdout(
        `${JSON.stringify({ valid: true, file, worldSize, dataParallelSize, config, requiredPlugins }, null, 2)}\n`,
      );
    } else {
      io.stdout(`${JSON.stringify(config, null, 2)}\n`);
      const plugins = requiredPlugins.length
        ? `; needs ${requiredPlugins.map((p) => `${p.package} (${p.reason})`).join(', ')}`
        : '';
      io.stderr(`${file}: valid for world size ${worldSize}${plugins}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (values.json) {
      io.stdout(`${JSON.stringify({ valid: false, file, issues: err.issues.map(issueJson) }, null, 2)}\n`);
    } else {
      const n = err.issues.length;
      io.stderr(`${file}: invalid config (${n} problem${n === 1 ? '' : 's'}):\n`);
      for (const issue of err.issues) io.stderr(`  ${formatConfigIssue(issue)}\n`);
    }
    return EXIT.invalidInput;
  }
}

/** The `config check` command. */
export const configCheckCommand: Command = {
  path: ['config', 'check'],
  summary: 'validate a DeepSpeed-style config and print it with every default filled in',
  usage: USAGE,
  run,
};
