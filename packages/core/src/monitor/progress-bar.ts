/**
 * One-line training progress on a terminal, redrawn in place with `\r` at most 10 times a second.
 *
 * It draws only on rank 0 and only when its stream is a TTY: in a pipe or a log file a bar is noise (a new
 * copy per redraw), so there it prints nothing and the `steps_per_print` summaries are the record. The one
 * exception is a rank started by `zeroflow run` from a terminal: its stdout is a pipe to the launcher, so
 * each redraw goes out as a marked line, which the launcher draws in place on its terminal.
 */

import {
  formatBytes,
  formatDuration,
  formatFloat,
  formatLr,
  formatRate,
  LAUNCHER_TTY_COLUMNS_ENV,
  type LiveLine,
  type OutputStream,
  PROGRESS_DONE_MARKER,
  PROGRESS_LINE_MARKER,
  rankFromEnv,
  setLiveLine,
} from './terminal.js';

/** Options of a `ProgressBar`. */
export interface ProgressBarOptions {
  /** Total steps of the run; without it the bar shows the step count, no percentage or ETA. */
  total?: number;
  /** Default `process.stdout`. */
  stream?: OutputStream;
  /** Only rank 0 draws; default from the launcher's environment. */
  rank?: number;
  /** Least time between two redraws; default 100 ms (10 Hz). The last step always draws. */
  minIntervalMs?: number;
  /** Clock in milliseconds; default `performance.now`. Tests pass a fake one. */
  now?: () => number;
  /** Width of the bar itself in characters; default 20. */
  barWidth?: number;
  /**
   * Width of the launcher's terminal when the bar must go through `zeroflow run` (marked lines on a pipe);
   * default from ZEROFLOW_LAUNCHER_TTY_COLUMNS when the stream is the default `process.stdout`.
   */
  launcherColumns?: number;
}

/** What one update shows; every field but `step` is optional. */
export interface ProgressUpdate {
  /** Steps completed (1 after the first optimizer step). */
  step: number;
  loss?: number;
  valLoss?: number;
  lr?: number;
  tokensPerSec?: number;
  /** Memory in use per rank, in bytes, indexed by rank. */
  memoryPerRank?: number[];
}

/** A throttled, in-place progress line for rank 0 on a terminal. */
export class ProgressBar implements LiveLine {
  /** Whether this bar draws at all (rank 0 and a TTY stream). */
  readonly enabled: boolean;
  private readonly total: number | undefined;
  private readonly stream: OutputStream;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly barWidth: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastLine = '';
  private visible = false;
  private startTime: number | undefined;
  private startStep = 0;
  private latest: ProgressUpdate | undefined;
  private valLoss: number | undefined;
  /** Set when redraws travel as marked lines to the launcher's terminal; its width. */
  private readonly launcherColumns: number | undefined;

  constructor(options: ProgressBarOptions = {}) {
    this.total = options.total;
    this.stream = options.stream ?? process.stdout;
    this.minIntervalMs = options.minIntervalMs ?? 100;
    this.now = options.now ?? (() => performance.now());
    this.barWidth = options.barWidth ?? 20;
    const fromEnv = options.stream === undefined ? Number(process.env[LAUNCHER_TTY_COLUMNS_ENV]) : Number.NaN;
    const launcherColumns = options.launcherColumns ?? (fromEnv > 0 ? fromEnv : undefined);
    const rank0 = (options.rank ?? rankFromEnv()) === 0;
    this.launcherColumns = rank0 && this.stream.isTTY !== true ? launcherColumns : undefined;
    this.enabled = rank0 && (this.stream.isTTY === true || this.launcherColumns !== undefined);
    // through the launcher, other lines need no clearing: the launcher keeps its live line below them
    if (this.enabled && this.launcherColumns === undefined) setLiveLine(this.stream, this);
  }

  /**
   * Records progress and redraws if the last redraw is at least `minIntervalMs` old (or this is the last step).
   * Returns whether it drew. Cheap when throttled: call it every step.
   */
  update(progress: ProgressUpdate): boolean {
    if (!this.enabled) return false;
    const t = this.now();
    if (this.startTime === undefined) {
      // ETA counts from the first update, so setup time before training does not skew it.
      this.startTime = t;
      this.startStep = progress.step;
    }
    // Validation runs rarely: keep its last value on the line between evaluations.
    if (progress.valLoss !== undefined) this.valLoss = progress.valLoss;
    this.latest = progress;
    const last = this.total !== undefined && progress.step >= this.total;
    if (!last && t - this.lastDraw < this.minIntervalMs) return false;
    this.lastDraw = t;
    this.draw(this.render(progress, t));
    return true;
  }

  /** Draws the latest state unthrottled and ends the line; the bar stops being the live line. */
  finish(): void {
    if (!this.enabled) return;
    if (this.launcherColumns !== undefined) {
      if (this.latest !== undefined) this.stream.write(`${PROGRESS_DONE_MARKER}${this.render(this.latest)}\n`);
      return;
    }
    if (this.latest !== undefined) this.draw(this.render(this.latest, this.now()));
    if (this.visible) this.stream.write('\n');
    this.visible = false;
    setLiveLine(this.stream, undefined);
  }

  /** Erases the bar from the terminal line (before another line is printed). */
  clearLine(): void {
    if (!this.visible) return;
    this.stream.write(`\r${' '.repeat(this.lastLine.length)}\r`);
    this.visible = false;
  }

  /** Draws the last line again (after another line was printed). */
  redrawLine(): void {
    if (this.lastLine !== '') this.draw(this.lastLine);
  }

  /**
   * The text of the line for `progress` at time `t` (ms). On a narrow terminal the least useful fields go
   * first (memory, lr, tokens/s, val loss), then the line is cut: a line as wide as the terminal wraps, and
   * `\r` then returns to the wrong row.
   */
  render(progress: ProgressUpdate, t: number = this.now()): string {
    const { step } = progress;
    // [priority, text]: a lower priority is dropped earlier when the line does not fit.
    const parts: [number, string][] = [];
    if (this.total !== undefined && this.total > 0) {
      const fraction = Math.min(1, Math.max(0, step / this.total));
      const filled = Math.round(fraction * this.barWidth);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(this.barWidth - filled)}]`;
      parts.push([9, `step ${step}/${this.total} ${bar} ${Math.floor(fraction * 100)}%`]);
    } else {
      parts.push([9, `step ${step}`]);
    }
    if (progress.loss !== undefined) parts.push([8, `loss ${formatFloat(progress.loss)}`]);
    const valLoss = progress.valLoss ?? this.valLoss;
    if (valLoss !== undefined) parts.push([5, `val ${formatFloat(valLoss)}`]);
    if (progress.lr !== undefined) parts.push([3, `lr ${formatLr(progress.lr)}`]);
    if (progress.tokensPerSec !== undefined) parts.push([4, `${formatRate(progress.tokensPerSec)} tok/s`]);
    if (this.total !== undefined && this.startTime !== undefined) {
      const done = step - this.startStep;
      const seconds = (t - this.startTime) / 1000;
      parts.push([7, `ETA ${done > 0 ? formatDuration(((this.total - step) * seconds) / done) : '--'}`]);
    }
    if (progress.memoryPerRank !== undefined && progress.memoryPerRank.length > 0) {
      parts.push([2, `mem ${progress.memoryPerRank.map((bytes, rank) => `r${rank} ${formatBytes(bytes)}`).join(' ')}`]);
    }
    const columns = this.launcherColumns ?? this.stream.columns;
    const limit = columns !== undefined && columns > 1 ? columns - 1 : Number.POSITIVE_INFINITY;
    let line = parts.map(([, text]) => text).join(' | ');
    while (line.length > limit && parts.length > 1) {
      let lowest = 0;
      parts.forEach(([priority], i) => {
        if (priority < parts[lowest][0]) lowest = i;
      });
      parts.splice(lowest, 1);
      line = parts.map(([, text]) => text).join(' | ');
    }
    return line.length > limit ? line.slice(0, limit) : line;
  }

  private draw(line: string): void {
    if (this.launcherColumns !== undefined) {
      this.stream.write(`${PROGRESS_LINE_MARKER}${line}\n`);
      this.lastLine = line;
      return;
    }
    // Pad with spaces over a longer previous line instead of an ANSI erase: works on any terminal.
    const pad =
      this.visible && this.lastLine.length > line.length ? ' '.repeat(this.lastLine.length - line.length) : '';
    this.stream.write(`\r${line}${pad}`);
    this.lastLine = line;
    this.visible = true;
  }
}
