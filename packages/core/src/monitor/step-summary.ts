/**
 * DeepSpeed's `steps_per_print` report: every N optimizer steps, rank 0 prints one line
 * `[rank 0] step=100, skipped=0, lr=[0.0003], loss=3.4121, tokens/s=1234.5`. Unlike the progress bar it prints
 * whether or not the stream is a terminal: it is the record in log files.
 */

import { formatFloat, type OutputStream, rankFromEnv, rankPrefix, writeLine } from './terminal.js';

/** Options of a `StepSummaryLogger`. */
export interface StepSummaryOptions {
  /** DeepSpeed's `steps_per_print` (default there: 10). */
  stepsPerPrint: number;
  /** Only rank 0 prints; default from the launcher's environment. */
  rank?: number;
  /** Default `process.stdout`. */
  stream?: OutputStream;
}

/** What a summary line reports. */
export interface StepSummary {
  /** Optimizer steps taken so far (DeepSpeed prints `global_steps + 1` after its step). */
  step: number;
  /** Steps skipped for gradient overflow (fp16). */
  skipped: number;
  /** Learning rate of each parameter group. */
  lr: number[];
  /** Momentum (beta1, beta2) of each parameter group, printed as DeepSpeed's `mom=[(0.9, 0.999)]`. */
  mom?: [number, number][];
  loss?: number;
  tokensPerSec?: number;
  /** More `key=value` fields, in order (e.g. `loss_scale`, `grad_norm`). */
  extra?: Record<string, number | string>;
}

/** Prints a DeepSpeed-style step summary every `stepsPerPrint` steps on rank 0. */
export class StepSummaryLogger {
  readonly stepsPerPrint: number;
  private readonly rank: number;
  private readonly stream: OutputStream;

  constructor(options: StepSummaryOptions) {
    if (!(Number.isInteger(options.stepsPerPrint) && options.stepsPerPrint >= 1)) {
      throw new RangeError(`steps_per_print must be an integer >= 1, got ${options.stepsPerPrint}`);
    }
    this.stepsPerPrint = options.stepsPerPrint;
    this.rank = options.rank ?? rankFromEnv();
    this.stream = options.stream ?? process.stdout;
  }

  /** Whether `step` is a print step (a multiple of `stepsPerPrint`). */
  isPrintStep(step: number): boolean {
    return step > 0 && step % this.stepsPerPrint === 0;
  }

  /** Prints the summary if this is rank 0 and a print step; returns whether it printed. */
  maybeLog(summary: StepSummary): boolean {
    if (this.rank !== 0 || !this.isPrintStep(summary.step)) return false;
    writeLine(this.stream, this.format(summary));
    return true;
  }

  /** The summary line, with the rank prefix. */
  format(summary: StepSummary): string {
    const fields = [`step=${summary.step}`, `skipped=${summary.skipped}`, `lr=[${summary.lr.map(String).join(', ')}]`];
    if (summary.mom !== undefined) fields.push(`mom=[${summary.mom.map(([b1, b2]) => `(${b1}, ${b2})`).join(', ')}]`);
    if (summary.loss !== undefined) fields.push(`loss=${formatFloat(summary.loss)}`);
    if (summary.tokensPerSec !== undefined) fields.push(`tokens/s=${formatFloat(summary.tokensPerSec, 1)}`);
    for (const [key, value] of Object.entries(summary.extra ?? {})) {
      fields.push(`${key}=${typeof value === 'number' ? String(value) : value}`);
    }
    return `${rankPrefix(this.rank)}${fields.join(', ')}`;
  }
}
