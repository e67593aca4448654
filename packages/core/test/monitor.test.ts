import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatDuration,
  Logger,
  PROGRESS_DONE_MARKER,
  PROGRESS_LINE_MARKER,
  ProgressBar,
  StepSummaryLogger,
  TIMER_NAMES,
  trimmedMean,
  WallClockTimers,
} from '../src/index.js';

/** A Writable that keeps what it receives, posing as a terminal or not. */
class FakeStream extends Writable {
  text = '';
  isTTY: boolean;
  columns: number | undefined;
  constructor(isTTY: boolean, columns?: number) {
    super({ decodeStrings: false });
    this.isTTY = isTTY;
    this.columns = columns;
  }
  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
  /** What a terminal would show: each `\r` returns to the line start and overwrites it. */
  get screen(): string[] {
    return this.text.split('\n').map((line) => {
      let shown = '';
      for (const segment of line.split('\r')) shown = segment + shown.slice(segment.length);
      return shown.trimEnd();
    });
  }
}

/** A clock the test moves by hand. */
function fakeClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('ProgressBar', () => {
  it('draws one line in place on a TTY with loss, val loss, lr, tokens/s, ETA and memory', () => {
    const stream = new FakeStream(true, 200);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 100, stream, rank: 0, now: clock.now });
    expect(bar.enabled).toBe(true);
    bar.update({ step: 0, loss: 5 });
    clock.t = 10_000; // 10 steps in 10 s: 90 steps left -> 1:30
    bar.update({
      step: 10,
      loss: 3.14149,
      valLoss: 3.5,
      lr: 3e-4,
      tokensPerSec: 12345.6,
      memoryPerRank: [1.5 * 2 ** 30, 2 ** 20],
    });
    clock.t = 11_000;
    bar.update({ step: 11, loss: 3.1 }); // val loss stays on the line between evaluations
    expect(stream.text).not.toContain('\n');
    expect(stream.text.split('\r').length).toBe(4); // three draws, each starting with \r
    const [line] = stream.screen;
    expect(line).toBe('step 11/100 [##------------------] 11% | loss 3.1000 | val 3.5000 | ETA 1:29');
    expect(stream.text).toContain(
      'step 10/100 [##------------------] 10% | loss 3.1415 | val 3.5000 | lr 3.00e-4 | 12,346 tok/s | ETA 1:30 | mem r0 1.5G r1 1.0M',
    );
    bar.finish();
    expect(stream.text.endsWith('\n')).toBe(true);
  });

  it('under a launcher on a terminal, sends each redraw as a marked line and the final one as done', () => {
    const pipe = new FakeStream(false);
    const bar = new ProgressBar({ total: 2, stream: pipe, rank: 0, minIntervalMs: 0, launcherColumns: 200 });
    expect(bar.enabled).toBe(true);
    bar.update({ step: 1, loss: 2, memoryPerRank: [1024] });
    bar.finish();
    expect(pipe.text.split('\n')).toEqual([
      `${PROGRESS_LINE_MARKER}step 1/2 [##########----------] 50% | loss 2.0000 | ETA -- | mem r0 1.0K`,
      `${PROGRESS_DONE_MARKER}step 1/2 [##########----------] 50% | loss 2.0000 | ETA -- | mem r0 1.0K`,
      '',
    ]);
    // other ranks, and a pipe without a launcher terminal, draw nothing
    expect(new ProgressBar({ stream: pipe, rank: 1, launcherColumns: 40 }).enabled).toBe(false);
    expect(new ProgressBar({ stream: pipe, rank: 0 }).enabled).toBe(false);
  });

  it('redraws at most 10 times a second, but always draws the last step', () => {
    const stream = new FakeStream(true);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 1000, stream, rank: 0, now: clock.now });
    const drawTimes: number[] = [];
    for (let step = 1; step <= 1000; step++) {
      clock.t += 5; // 5 ms a step, 5 s in all
      if (bar.update({ step, loss: 1 })) drawTimes.push(clock.t);
    }
    // Steps 1, 21, ..., 981 (every 100 ms) and the last step 1000.
    expect(drawTimes).toHaveLength(51);
    const gaps = drawTimes.slice(1, -1).map((t, i) => t - drawTimes[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
    expect(drawTimes.at(-1)).toBe(5000);
    expect(stream.screen[0]).toMatch(/^step 1000\/1000 \[#{20}\] 100%/);
  });

  it('prints nothing when the stream is not a TTY or the rank is not 0', () => {
    for (const [isTTY, rank] of [
      [false, 0],
      [true, 1],
    ] as const) {
      const stream = new FakeStream(isTTY);
      const bar = new ProgressBar({ total: 10, stream, rank, minIntervalMs: 0 });
      expect(bar.enabled).toBe(false);
      for (let step = 1; step <= 10; step++) expect(bar.update({ step, loss: 1 })).toBe(false);
      bar.finish();
      expect(stream.text).toBe('');
    }
  });

  it('stays shorter than the terminal and erases a longer previous line', () => {
    const stream = new FakeStream(true, 60);
    const bar = new ProgressBar({ total: 10, stream, rank: 0, minIntervalMs: 0 });
    bar.update({ step: 1, loss: 2, lr: 1e-3, tokensPerSec: 1e6, memoryPerRank: [1024] });
    // Memory, lr and tokens/s make way for what matters most.
    expect(stream.screen[0]).toBe('step 1/10 [##------------------] 10% | loss 2.0000 | ETA --');
    const tiny = new FakeStream(true, 20);
    new ProgressBar({ total: 10, stream: tiny, rank: 0 }).update({ step: 1, loss: 2 });
    expect(tiny.screen[0]).toBe('step 1/10 [##------');
    const wide = new FakeStream(true, 200);
    const bar2 = new ProgressBar({ stream: wide, rank: 0, minIntervalMs: 0 });
    bar2.update({ step: 1, loss: 2, lr: 1e-3, tokensPerSec: 1e6 });
    bar2.update({ step: 2 });
    expect(wide.screen[0]).toBe('step 2');
  });

  it('keeps log lines and summaries above the bar', () => {
    const stream = new FakeStream(true, 200);
    const bar = new ProgressBar({ total: 10, stream, rank: 0, minIntervalMs: 0 });
    const summaries = new StepSummaryLogger({ stepsPerPrint: 5, stream, rank: 0 });
    const logger = new Logger({ stream, errorStream: stream, rank: 0, level: 'info' });
    for (let step = 1; step <= 10; step++) {
      bar.update({ step, loss: 10 - step });
      summaries.maybeLog({ step, skipped: 0, lr: [0.001], loss: 10 - step });
    }
    logger.warn('disk almost full');
    expect(stream.screen).toEqual([
      '[rank 0] step=5, skipped=0, lr=[0.001], loss=5.0000',
      '[rank 0] step=10, skipped=0, lr=[0.001], loss=0.0000',
      '[rank 0] [WARN] disk almost full',
      'step 10/10 [####################] 100% | loss 0.0000 | ETA 0s',
    ]);
  });
});

describe('StepSummaryLogger', () => {
  it('prints a DeepSpeed-style line every steps_per_print steps on rank 0, TTY or not', () => {
    const stream = new FakeStream(false);
    const log = new StepSummaryLogger({ stepsPerPrint: 3, stream, rank: 0 });
    const printed = [1, 2, 3, 4, 5, 6].map((step) =>
      log.maybeLog({
        step,
        skipped: step === 6 ? 1 : 0,
        lr: [3e-4, 1e-5],
        mom: [[0.9, 0.999]],
        loss: 2.5,
        tokensPerSec: 1500.25,
      }),
    );
    expect(printed).toEqual([false, false, true, false, false, true]);
    expect(stream.text).toBe(
      '[rank 0] step=3, skipped=0, lr=[0.0003, 0.00001], mom=[(0.9, 0.999)], loss=2.5000, tokens/s=1500.3\n' +
        '[rank 0] step=6, skipped=1, lr=[0.0003, 0.00001], mom=[(0.9, 0.999)], loss=2.5000, tokens/s=1500.3\n',
    );
    const other = new FakeStream(false);
    new StepSummaryLogger({ stepsPerPrint: 1, stream: other, rank: 2 }).maybeLog({ step: 1, skipped: 0, lr: [1] });
    expect(other.text).toBe('');
    expect(log.format({ step: 1, skipped: 0, lr: [1], loss: Number.NaN, extra: { loss_scale: 65536 } })).toBe(
      '[rank 0] step=1, skipped=0, lr=[1], loss=nan, loss_scale=65536',
    );
    expect(() => new StepSummaryLogger({ stepsPerPrint: 0 })).toThrow(/steps_per_print/);
  });
});

describe('Logger', () => {
  it('prefixes lines with the rank and is quiet off a terminal except warnings and errors', () => {
    const out = new FakeStream(false);
    const err = new FakeStream(false);
    const saved = process.env.ZEROFLOW_LOG_LEVEL;
    delete process.env.ZEROFLOW_LOG_LEVEL;
    try {
      const logger = new Logger({ rank: 3, stream: out, errorStream: err });
      expect(logger.level).toBe('warn');
      logger.debug('d');
      logger.info('i');
      logger.warn('w');
      logger.error('e1\ne2');
      expect(out.text).toBe('');
      expect(err.text).toBe('[rank 3] [WARN] w\n[rank 3] [ERROR] e1\n[rank 3] [ERROR] e2\n');
      const tty = new FakeStream(true);
      const ttyLogger = new Logger({ rank: 0, stream: tty, errorStream: err });
      expect(ttyLogger.level).toBe('info');
      ttyLogger.info('hello');
      ttyLogger.debug('hidden');
      expect(tty.text).toBe('[rank 0] hello\n');
      process.env.ZEROFLOW_LOG_LEVEL = 'DEBUG';
      const envLogger = new Logger({ rank: 1, stream: out, errorStream: err });
      envLogger.debug('seen');
      expect(out.text).toBe('[rank 1] [DEBUG] seen\n');
    } finally {
      if (saved === undefined) delete process.env.ZEROFLOW_LOG_LEVEL;
      else process.env.ZEROFLOW_LOG_LEVEL = saved;
    }
  });

  it('limits info to chosen ranks but never hides warnings', () => {
    const out = new FakeStream(true);
    const logger = new Logger({ rank: 1, stream: out, errorStream: out, level: 'debug', ranks: [0] });
    logger.info('only rank 0 says this');
    logger.warn('every rank says this');
    expect(out.text).toBe('[rank 1] [WARN] every rank says this\n');
    const silent = new Logger({ rank: 0, stream: out, errorStream: out, level: 'silent' });
    silent.error('nothing');
    expect(out.text).toBe('[rank 1] [WARN] every rank says this\n');
    expect(() => new Logger({ level: 'loud' as never })).toThrow(/log level/);
  });
});

describe('WallClockTimers', () => {
  it('sums intervals, resets on elapsed, and keeps a running timer running', () => {
    const clock = fakeClock();
    const timers = new WallClockTimers({ enabled: true, rank: 0, now: clock.now, stream: new FakeStream(false) });
    const fwd = timers.timer(TIMER_NAMES.forward);
    expect(timers.timer('forward')).toBe(fwd);
    fwd.start();
    clock.t += 5;
    fwd.stop();
    fwd.start();
    clock.t += 7;
    fwd.stop();
    expect(fwd.elapsed(false)).toBe(12);
    expect(fwd.elapsed()).toBe(12);
    expect(fwd.elapsed()).toBe(0);
    fwd.start();
    clock.t += 4;
    expect(fwd.elapsed()).toBe(4); // read while running: counts up to now...
    expect(fwd.started).toBe(true); // ...and goes on
    clock.t += 6;
    fwd.stop();
    expect(fwd.elapsed()).toBe(6);
    expect(() => fwd.stop()).toThrow(/not started/);
    fwd.start();
    expect(() => fwd.start()).toThrow(/already been started/);
  });

  it('reports a trimmed mean like DeepSpeed', () => {
    expect(trimmedMean([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000])).toBe(5.5); // 10% off each end
    expect(trimmedMean([])).toBe(0);
    const clock = fakeClock();
    const timers = new WallClockTimers({ enabled: true, now: clock.now, stream: new FakeStream(false) });
    const step = timers.timer('step');
    for (const d of [10, 10, 10, 10, 10, 10, 10, 10, 10, 500]) {
      step.start();
      clock.t += d;
      step.stop();
    }
    expect(timers.means(['step', 'missing'])).toEqual({ step: 10 });
  });

  it('logs a time (ms) line every steps_per_print steps on rank 0, per step', () => {
    const stream = new FakeStream(false);
    const clock = fakeClock();
    const timers = new WallClockTimers({ enabled: true, stepsPerPrint: 2, rank: 0, now: clock.now, stream });
    const lines: (string | undefined)[] = [];
    for (let step = 1; step <= 4; step++) {
      for (const [name, ms] of [
        ['forward', 10],
        ['backward', 20],
        ['step', 5 * step],
      ] as const) {
        timers.timer(name).start();
        clock.t += ms;
        timers.timer(name).stop();
      }
      lines.push(timers.logAtStep(step));
    }
    expect(lines[0]).toBeUndefined();
    expect(lines[2]).toBeUndefined();
    expect(stream.text).toBe(
      '[rank 0] time (ms) | forward: 10.00 | backward: 20.00 | step: 7.50\n' +
        '[rank 0] time (ms) | forward: 10.00 | backward: 20.00 | step: 17.50\n',
    );
  });

  it('measures nothing and prints nothing when disabled or not rank 0', () => {
    const stream = new FakeStream(true);
    const off = new WallClockTimers({ enabled: false, stream });
    off.timer('forward').start();
    off.timer('forward').start(); // no-op, no error
    expect(off.timer('forward').elapsed()).toBe(0);
    expect(off.log()).toBeUndefined();
    const clock = fakeClock();
    const rank1 = new WallClockTimers({ enabled: true, rank: 1, stream, now: clock.now });
    rank1.timer('forward').start();
    clock.t += 3;
    rank1.timer('forward').stop();
    expect(rank1.log(['forward'])).toBeUndefined();
    expect(rank1.timer('forward').count).toBe(0); // still reset, so all ranks stay in step
    expect(stream.text).toBe('');
  });
});

describe('formats', () => {
  it('formats bytes and durations compactly', () => {
    expect(formatBytes(512)).toBe('512B');
    expect(formatBytes(1536)).toBe('1.5K');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0G');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(754)).toBe('12:34');
    expect(formatDuration(11045)).toBe('3:04:05');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('--');
  });
});
