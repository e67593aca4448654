/**
 * What the monitors share: the stream type they write to, this process's rank, number formats, and the
 * coordination that keeps a progress bar and ordinary log lines from overwriting each other on one terminal.
 */

/** Where monitors write: `process.stdout`, a file stream, or a test's collecting Writable. */
export interface OutputStream {
  write(chunk: string): unknown;
  /** True on a terminal: the progress bar draws only there, and logs default to `info` only there. */
  isTTY?: boolean;
  /** Terminal width; the progress bar keeps its line shorter so that it never wraps. */
  columns?: number;
}

/** This process's global rank from the launcher's environment (torchrun, OpenMPI, Slurm), else 0. */
export function rankFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  for (const name of ['RANK', 'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID']) {
    const value = Number(env[name]);
    if (env[name] !== undefined && env[name] !== '' && Number.isInteger(value) && value >= 0) return value;
  }
  return 0;
}

/**
 * Set by `zeroflow run` for its ranks when the launcher's own stdout is a terminal: that terminal's width.
 * Rank 0's output then reaches the terminal through a pipe, so its progress bar cannot draw in place; it
 * sends each redraw as a marked line instead, and the launcher shows it as one live line at the bottom.
 */
export const LAUNCHER_TTY_COLUMNS_ENV = 'ZEROFLOW_LAUNCHER_TTY_COLUMNS';
/** Marks a line that replaces the launcher's live progress line (an escape byte: never in ordinary text). */
export const PROGRESS_LINE_MARKER = '\u001b[zeroflow:progress]';
/** Marks the final progress line: the launcher prints it as an ordinary line and drops the live line. */
export const PROGRESS_DONE_MARKER = '\u001b[zeroflow:progress-done]';

/** `[rank N] ` (with the space), or nothing under the launcher, which prefixes lines itself. */
export function rankPrefix(rank: number): string {
  // under `zeroflow run` the launcher already prefixes every line with the rank
  return process.env.ZEROFLOW_RANK_PREFIXED === '1' ? '' : `[rank ${rank}] `;
}

/** Something that owns the current terminal line and must be cleared before another line is printed. */
export interface LiveLine {
  /** Erases the live line (the cursor ends at column 0). */
  clearLine(): void;
  /** Draws it again after a printed line. */
  redrawLine(): void;
}

// The live line (progress bar) of each stream; a WeakMap so that a dropped stream frees its bar.
const liveLines = new WeakMap<object, LiveLine>();

/** Registers `line` as the live line of `stream` (undefined unregisters). Used by ProgressBar. */
export function setLiveLine(stream: OutputStream, line: LiveLine | undefined): void {
  if (line === undefined) liveLines.delete(stream);
  else liveLines.set(stream, line);
}

/**
 * Writes one line (a newline is added) to `stream`; when a progress bar lives on that stream, the bar is
 * cleared first and redrawn below the line, so logs scroll up and the bar stays at the bottom.
 */
export function writeLine(stream: OutputStream, text: string): void {
  const live = liveLines.get(stream);
  live?.clearLine();
  stream.write(`${text}\n`);
  live?.redrawLine();
}

/** A loss or other float with 4 decimals, or `nan` / `inf` as Python prints them. */
export function formatFloat(value: number, digits = 4): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return value.toFixed(digits);
}

/** A learning rate: 3 significant digits in exponent form (`3.00e-4`), short and aligned. */
export function formatLr(value: number): string {
  return value === 0 ? '0' : value.toExponential(2);
}

/** A rate such as tokens/s with thousands grouping: `12,345`. */
export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return formatFloat(value);
  return Math.round(value).toLocaleString('en-US');
}

/** Bytes as `512B`, `1.2K`, `3.4M`, `1.5G` (binary units). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)}B` : `${value.toFixed(1)}${units[unit]}`;
}

/** Seconds as `45s`, `12:34` (m:ss) or `3:04:05` (h:mm:ss). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
