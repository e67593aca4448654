/**
 * DeepSpeed's `csv_monitor` (deepspeed/monitor/csv_monitor.py): events `(name, value, step)` go to one CSV
 * file per event name under `<output_path>/<job_name>/`, named after the event with `/` and spaces turned
 * into `_` (`Train/Samples/train_loss` -> `Train_Samples_train_loss.csv`), with a header `step,<last part of
 * the name>` and one `step,value` row per event. Rank 0 only, as in DeepSpeed.
 *
 * Two deliberate differences: rows are buffered and appended in batches (DeepSpeed opens the file once per
 * event), flushed on `flush()`, `close()`, every `flushEvery` events and at process exit; and the header is
 * written only when the file is new or empty, so a resumed run appends rows instead of a second header
 * (DeepSpeed writes one header per process).
 */

import { appendFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rankFromEnv } from './terminal.js';

/** DeepSpeed's `csv_monitor` config section. */
export interface CsvMonitorConfig {
  /** Default false. */
  enabled?: boolean;
  /** Directory under which `job_name/` is created; default "" (the working directory), as in DeepSpeed. */
  output_path?: string;
  /** Default "DeepSpeedJobName", as in DeepSpeed. */
  job_name?: string;
}

/** One event, in DeepSpeed's tensorboard-style tuple: (name, value, step). */
export type MonitorEvent = readonly [name: string, value: number, step: number];

/** What every monitor offers (DeepSpeed's `Monitor.write_events`). */
export interface Monitor {
  writeEvents(events: readonly MonitorEvent[]): void;
  close(): void;
}

/** Options of a `CsvMonitor` beyond its config section. */
export interface CsvMonitorOptions {
  /** Only rank 0 writes; default from the launcher's environment. */
  rank?: number;
  /** Buffered rows that trigger a flush; default 100. 1 writes every event at once. */
  flushEvery?: number;
}

/** Quotes a CSV field when it holds a comma, quote or newline (as Python's csv writer does). */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Writes monitor events as CSV files, one per event name. */
export class CsvMonitor implements Monitor {
  /** Whether this process writes (enabled in the config and rank 0). */
  readonly enabled: boolean;
  /** `<output_path>/<job_name>`; undefined when disabled. */
  readonly logDir: string | undefined;
  private readonly flushEvery: number;
  private readonly pending = new Map<string, string[]>();
  private readonly headerWritten = new Set<string>();
  private pendingRows = 0;
  private closed = false;
  private readonly onExit = () => this.flush();

  constructor(config: CsvMonitorConfig, options: CsvMonitorOptions = {}) {
    this.enabled = config.enabled === true && (options.rank ?? rankFromEnv()) === 0;
    this.flushEvery = options.flushEvery ?? 100;
    if (!(Number.isInteger(this.flushEvery) && this.flushEvery >= 1)) {
      throw new RangeError(`flushEvery must be an integer >= 1, got ${this.flushEvery}`);
    }
    if (!this.enabled) return;
    this.logDir = join(config.output_path ?? '', config.job_name ?? 'DeepSpeedJobName');
    mkdirSync(this.logDir, { recursive: true });
    // Rows still buffered when the process ends normally are written: a crash loses at most flushEvery rows.
    process.once('exit', this.onExit);
  }

  /** The CSV file of an event name. */
  fileFor(name: string): string {
    if (this.logDir === undefined) throw new Error('CsvMonitor is disabled: it has no files');
    return join(this.logDir, `${name.replaceAll('/', '_').replaceAll(' ', '_')}.csv`);
  }

  /** Records events; rows reach the files on the next flush. */
  writeEvents(events: readonly MonitorEvent[]): void {
    if (!this.enabled) return;
    if (this.closed) throw new Error('CsvMonitor.writeEvents after close()');
    for (const [name, value, step] of events) {
      const file = this.fileFor(name);
      let rows = this.pending.get(file);
      if (rows === undefined) {
        rows = [];
        this.pending.set(file, rows);
      }
      if (!this.headerWritten.has(file)) {
        this.headerWritten.add(file);
        if (!this.hasContent(file)) {
          const parts = name.split('/');
          rows.push(`step,${csvField(parts[parts.length - 1])}`);
        }
      }
      rows.push(`${step},${csvField(String(value))}`);
      this.pendingRows++;
    }
    if (this.pendingRows >= this.flushEvery) this.flush();
  }

  /** Appends all buffered rows to their files. */
  flush(): void {
    for (const [file, rows] of this.pending) {
      if (rows.length > 0) appendFileSync(file, `${rows.join('\n')}\n`);
    }
    this.pending.clear();
    this.pendingRows = 0;
  }

  /** Flushes and stops; later events are an error. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    process.removeListener('exit', this.onExit);
  }

  private hasContent(file: string): boolean {
    try {
      return statSync(file).size > 0;
    } catch {
      return false;
    }
  }
}
