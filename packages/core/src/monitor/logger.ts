/**
 * A small leveled logger with the per-rank prefix of DESIGN.md 9 (`[rank N] ...`).
 *
 * Quiet by default when not on a terminal: piped or redirected output (CI logs, `> train.log`) gets warnings
 * and errors only, unless a level is asked for (option or `ZEROFLOW_LOG_LEVEL`).
 */

import { type OutputStream, rankFromEnv, rankPrefix, writeLine } from './terminal.js';

/** Log levels, most verbose first. `silent` prints nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const TAG: Record<Exclude<LogLevel, 'silent'>, string> = {
  debug: '[DEBUG] ',
  info: '',
  warn: '[WARN] ',
  error: '[ERROR] ',
};

/** Options of a `Logger`. */
export interface LoggerOptions {
  /** Rank in the prefix; default from the launcher's environment (RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID). */
  rank?: number;
  /**
   * Lowest level printed. Default: `ZEROFLOW_LOG_LEVEL` if set, else `info` when `stream` is a terminal and
   * `warn` when it is not.
   */
  level?: LogLevel;
  /** Where debug and info lines go; default `process.stdout`. */
  stream?: OutputStream;
  /** Where warnings and errors go; default `process.stderr`. */
  errorStream?: OutputStream;
  /**
   * Ranks that print debug and info lines; default all. Warnings and errors print on every rank: a problem on
   * rank 3 must not be hidden because rank 0 is fine.
   */
  ranks?: number[];
}

function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && value in SEVERITY;
}

/** Leveled logger that prefixes each line with `[rank N]`. */
export class Logger {
  readonly rank: number;
  readonly level: LogLevel;
  private readonly stream: OutputStream;
  private readonly errorStream: OutputStream;
  private readonly ranks: number[] | undefined;

  constructor(options: LoggerOptions = {}) {
    this.rank = options.rank ?? rankFromEnv();
    this.stream = options.stream ?? process.stdout;
    this.errorStream = options.errorStream ?? process.stderr;
    this.ranks = options.ranks;
    const fromEnv = process.env.ZEROFLOW_LOG_LEVEL?.toLowerCase();
    if (options.level !== undefined && !isLogLevel(options.level)) {
      throw new RangeError(
        `log level must be one of ${Object.keys(SEVERITY).join(', ')}, got ${String(options.level)}`,
      );
    }
    this.level = options.level ?? (isLogLevel(fromEnv) ? fromEnv : this.stream.isTTY === true ? 'info' : 'warn');
  }

  /** Whether a message at `level` would be printed by this process. */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    if (SEVERITY[level] < SEVERITY[this.level]) return false;
    if (SEVERITY[level] < SEVERITY.warn && this.ranks !== undefined && !this.ranks.includes(this.rank)) return false;
    return true;
  }

  debug(message: string): void {
    this.emit('debug', message);
  }

  info(message: string): void {
    this.emit('info', message);
  }

  warn(message: string): void {
    this.emit('warn', message);
  }

  error(message: string): void {
    this.emit('error', message);
  }

  private emit(level: Exclude<LogLevel, 'silent'>, message: string): void {
    if (!this.enabled(level)) return;
    const stream = SEVERITY[level] >= SEVERITY.warn ? this.errorStream : this.stream;
    const prefix = `${rankPrefix(this.rank)}${TAG[level]}`;
    // Every line of a multi-line message gets the prefix, so `grep "rank 3"` finds all of it.
    for (const line of message.split('\n')) writeLine(stream, `${prefix}${line}`);
  }
}
