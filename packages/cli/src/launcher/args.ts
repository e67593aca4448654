/**
 * The command line of `zeroflow run`: launcher options, then the script and its own arguments (which are
 * never parsed as launcher options: `zeroflow run train.ts --lr 3e-4`).
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../command.js';

/** Options that take a value (`--name value` or `--name=value`). */
const VALUE_OPTIONS = [
  'nproc-per-node',
  'hostfile',
  'include',
  'exclude',
  'master-addr',
  'master-port',
  'launcher',
  'max-restarts',
  'timeout-ms',
  'comm',
  'grace-ms',
  // node agent (internal: the launcher starts it on each host through ssh)
  'rank-offset',
  'world-size',
  'slots',
] as const;
const BOOLEAN_OPTIONS = ['dry-run', 'help', 'node-agent'] as const;

type ValueOption = (typeof VALUE_OPTIONS)[number];
type BooleanOption = (typeof BOOLEAN_OPTIONS)[number];

/** The parsed command line. */
export interface RunArgs {
  values: Partial<Record<ValueOption, string>> & Partial<Record<BooleanOption, boolean>>;
  /** The script (undefined with --help only) and its arguments. */
  script: string | undefined;
  scriptArgs: string[];
}

/** Splits argv at the script: everything before it is the launcher's, everything after the script's. */
export function parseRunArgs(argv: string[]): RunArgs {
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') break;
    const name = arg.replace(/^--?/, '').split('=')[0] as string;
    if ((VALUE_OPTIONS as readonly string[]).includes(name) && !arg.includes('=')) i += 2;
    else i += 1;
  }
  const head = argv.slice(0, Math.min(i, argv.length));
  const rest = argv[i] === '--' ? argv.slice(i + 1) : argv.slice(i);
  let parsed: ReturnType<typeof parseHead>;
  try {
    parsed = parseHead(head);
  } catch (err) {
    // node:util parseArgs reports unknown options and missing values as TypeErrors (ERR_PARSE_ARGS_*)
    throw new UsageError((err as Error).message);
  }
  return { values: parsed.values as RunArgs['values'], script: rest[0], scriptArgs: rest.slice(1) };
}

function parseHead(head: string[]) {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const name of VALUE_OPTIONS) options[name] = { type: 'string' };
  for (const name of BOOLEAN_OPTIONS) options[name] = { type: 'boolean' };
  options.help = { type: 'boolean', short: 'h' };
  return parseArgs({ args: head, options, strict: true, allowPositionals: false });
}

/** An integer option in [min, max], or undefined when absent. */
export function intOption(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
