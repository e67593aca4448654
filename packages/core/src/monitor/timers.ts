/**
 * DeepSpeed's `wall_clock_breakdown` timers (deepspeed/utils/timer.py, SynchronizedWallClockTimer): named
 * timers started and stopped around the phases of a step, summed over the intervals since the last reset, and
 * a `time (ms) | forward: 12.34 | backward: 56.78` line on rank 0.
 *
 * Host wall-clock only: tfjs on the cpu backend runs kernels synchronously, so there is no device queue to
 * synchronize before reading the clock. DeepSpeed names the same timers `fwd`, `bwd`, `bwd_inner`,
 * `bwd_allreduce` and `step` (plus `*_microstep` variants).
 */

import { type OutputStream, rankFromEnv, rankPrefix, writeLine } from './terminal.js';

/** The engine's timer names (DeepSpeed's fwd, bwd, bwd_inner, bwd_allreduce, step). */
export const TIMER_NAMES = {
  forward: 'forward',
  backward: 'backward',
  backwardInner: 'backward_inner',
  backwardAllreduce: 'backward_allreduce',
  step: 'step',
} as const;

/** All engine timers, in the order `log` prints them. */
export const ENGINE_TIMERS: readonly string[] = Object.values(TIMER_NAMES);

/** Trimmed mean: drop `trim` of the values at each end after sorting (DeepSpeed's trim_mean). */
export function trimmedMean(values: readonly number[], trim = 0.1): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const k = Math.round(sorted.length * trim);
  const kept = sorted.slice(k, sorted.length - k);
  if (kept.length === 0) return 0;
  return kept.reduce((sum, v) => sum + v, 0) / kept.length;
}

/** One named timer: a list of measured intervals since its last reset. */
export class Timer {
  readonly name: string;
  private readonly now: () => number;
  private startedAt: number | undefined;
  private readonly intervals: number[] = [];

  constructor(name: string, now: () => number) {
    this.name = name;
    this.now = now;
  }

  /** Whether the timer is running. */
  get started(): boolean {
    return this.startedAt !== undefined;
  }

  /** Intervals recorded since the last reset. */
  get count(): number {
    return this.intervals.length;
  }

  start(): void {
    if (this.startedAt !== undefined) throw new Error(`timer "${this.name}" has already been started`);
    this.startedAt = this.now();
  }

  stop(): void {
    if (this.startedAt === undefined) throw new Error(`timer "${this.name}" is not started`);
    this.intervals.push(this.now() - this.startedAt);
    this.startedAt = undefined;
  }

  /**
   * Total milliseconds of the recorded intervals. A running timer counts up to now and keeps running.
   * With `reset` (the default, as in DeepSpeed) the intervals are cleared.
   */
  elapsed(reset = true): number {
    const running = this.started;
    if (running) this.stop();
    const total = this.intervals.reduce((sum, v) => sum + v, 0);
    if (reset) this.intervals.length = 0;
    if (running) this.start();
    return total;
  }

  /** Trimmed mean (10% each end) of the recorded intervals in milliseconds; does not reset. */
  mean(): number {
    return trimmedMean(this.intervals, 0.1);
  }

  reset(): void {
    this.startedAt = undefined;
    this.intervals.length = 0;
  }
}

/** Options of `WallClockTimers`. */
export interface WallClockTimersOptions {
  /** DeepSpeed's `wall_clock_breakdown`; when false every timer is a no-op and `log` prints nothing. */
  enabled: boolean;
  /** DeepSpeed's `steps_per_print`, for `logAtStep`; default 10. */
  stepsPerPrint?: number;
  /** Only rank 0 prints; default from the launcher's environment. */
  rank?: number;
  /** Default `process.stdout`. */
  stream?: OutputStream;
  /** Clock in milliseconds; default `performance.now`. */
  now?: () => number;
}

/** Options of `WallClockTimers.log`. */
export interface TimerLogOptions {
  /** Divide every total by this (e.g. the number of steps they cover); default 1. */
  normalizer?: number;
  /** Clear the timers after reading; default true. */
  reset?: boolean;
}

// Disabled timers share one instance that measures nothing, so call sites need no `if (enabled)`.
class NoopTimer extends Timer {
  override start(): void {}
  override stop(): void {}
  override elapsed(): number {
    return 0;
  }
  override mean(): number {
    return 0;
  }
}

/** A group of named timers, created on first use. */
export class WallClockTimers {
  readonly enabled: boolean;
  readonly stepsPerPrint: number;
  private readonly rank: number;
  private readonly stream: OutputStream;
  private readonly now: () => number;
  private readonly timers = new Map<string, Timer>();
  private readonly noop: Timer;

  constructor(options: WallClockTimersOptions) {
    this.enabled = options.enabled;
    this.stepsPerPrint = options.stepsPerPrint ?? 10;
    if (!(Number.isInteger(this.stepsPerPrint) && this.stepsPerPrint >= 1)) {
      throw new RangeError(`steps_per_print must be an integer >= 1, got ${this.stepsPerPrint}`);
    }
    this.rank = options.rank ?? rankFromEnv();
    this.stream = options.stream ?? process.stdout;
    this.now = options.now ?? (() => performance.now());
    this.noop = new NoopTimer('noop', this.now);
  }

  /** The timer called `name` (DeepSpeed's `timers(name)`); a no-op timer when disabled. */
  timer(name: string): Timer {
    if (!this.enabled) return this.noop;
    let timer = this.timers.get(name);
    if (timer === undefined) {
      timer = new Timer(name, this.now);
      this.timers.set(name, timer);
    }
    return timer;
  }

  /** Names of the timers created so far. */
  names(): string[] {
    return [...this.timers.keys()];
  }

  /** Mean interval (trimmed) of each named timer that exists, in ms divided by `normalizer`. */
  means(names: readonly string[], normalizer = 1): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of names) {
      const timer = this.timers.get(name);
      if (timer !== undefined) out[name] = timer.mean() / normalizer;
    }
    return out;
  }

  /**
   * Prints `[rank 0] time (ms) | forward: 12.34 | ...` for the named timers that exist (rank 0, enabled) and
   * returns the line (undefined when nothing printed). Resets them unless `reset: false`.
   */
  log(names: readonly string[] = ENGINE_TIMERS, options: TimerLogOptions = {}): string | undefined {
    if (!this.enabled) return undefined;
    const normalizer = options.normalizer ?? 1;
    if (!(normalizer > 0)) throw new RangeError(`normalizer must be > 0, got ${normalizer}`);
    let line = 'time (ms)';
    for (const name of names) {
      const timer = this.timers.get(name);
      if (timer !== undefined) line += ` | ${name}: ${(timer.elapsed(options.reset ?? true) / normalizer).toFixed(2)}`;
    }
    if (this.rank !== 0) return undefined;
    const text = `${rankPrefix(this.rank)}${line}`;
    writeLine(this.stream, text);
    return text;
  }

  /**
   * At every `stepsPerPrint`-th step, logs the named timers as milliseconds per step over the steps since the
   * last print, and resets them. Returns the line printed, if any.
   */
  logAtStep(step: number, names: readonly string[] = ENGINE_TIMERS): string | undefined {
    if (!this.enabled || step <= 0 || step % this.stepsPerPrint !== 0) return undefined;
    return this.log(names, { normalizer: this.stepsPerPrint, reset: true });
  }
}
