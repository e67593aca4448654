import type { ResolvedConfig } from '../config/index.js';
import { CsvMonitor } from '../monitor/csv-monitor.js';
import { Logger } from '../monitor/logger.js';
import { StepSummaryLogger } from '../monitor/step-summary.js';
import { WallClockTimers } from '../monitor/timers.js';
import type { StepOutcome, WorldInfo } from '../plugin.js';

/** The engine's view of what it reports per step. */
interface StepSource {
  globalSteps: number;
  skippedSteps: number;
  globalSamples: number;
  getLr(): number[];
}

/** Timer names the engine records (tfjs computes forward and backward in one call, so they share a timer). */
const ENGINE_TIMER_NAMES = ['forward_backward', 'step'] as const;

/**
 * Wires the config's monitoring keys to the monitors: `steps_per_print` summaries, `wall_clock_breakdown`
 * timers and DeepSpeed's `csv_monitor` events (Train/Samples/train_loss, Train/Samples/lr keyed by samples).
 */
export class EngineMonitor {
  private readonly timers: WallClockTimers;
  private readonly summary: StepSummaryLogger | null;
  private readonly csv: CsvMonitor;
  private readonly logger: Logger;
  private lastPrint = { time: performance.now(), samples: 0 };

  constructor(config: ResolvedConfig, world: WorldInfo) {
    // steps_per_print defaults to null (DeepSpeed >= 0.15.2): no summaries; timers then report every 10 steps.
    const stepsPerPrint = config.steps_per_print;
    this.timers = new WallClockTimers({
      enabled: config.wall_clock_breakdown,
      stepsPerPrint: stepsPerPrint ?? 10,
      rank: world.rank,
    });
    this.summary = stepsPerPrint ? new StepSummaryLogger({ stepsPerPrint, rank: world.rank }) : null;
    this.csv = new CsvMonitor(config.csv_monitor ?? {}, { rank: world.rank });
    this.logger = new Logger({ rank: world.rank });
  }

  log(message: string): void {
    this.logger.info(message);
  }

  time<T>(name: (typeof ENGINE_TIMER_NAMES)[number], fn: () => T): T {
    const t = this.timers.timer(name);
    t.start();
    try {
      return fn();
    } finally {
      t.stop();
    }
  }

  async timeAsync<T>(name: (typeof ENGINE_TIMER_NAMES)[number], fn: () => Promise<T>): Promise<T> {
    const t = this.timers.timer(name);
    t.start();
    try {
      return await fn();
    } finally {
      t.stop();
    }
  }

  afterStep(engine: StepSource, outcome: StepOutcome & { loss: number }): void {
    const step = engine.globalSteps;
    const lr = engine.getLr();
    if (this.csv.enabled) {
      this.csv.writeEvents([
        ['Train/Samples/train_loss', outcome.loss, engine.globalSamples],
        ['Train/Samples/lr', lr[0], engine.globalSamples],
        ['Train/Samples/grad_norm', outcome.gradNorm, engine.globalSamples],
      ]);
    }
    if (this.summary?.isPrintStep(step)) {
      const now = performance.now();
      const samplesPerSec =
        ((engine.globalSamples - this.lastPrint.samples) * 1000) / Math.max(now - this.lastPrint.time, 1e-9);
      this.lastPrint = { time: now, samples: engine.globalSamples };
      this.summary.maybeLog({
        step,
        skipped: engine.skippedSteps,
        lr,
        loss: outcome.loss,
        extra: { grad_norm: Number(outcome.gradNorm.toPrecision(4)), 'samples/s': Number(samplesPerSec.toFixed(1)) },
      });
    }
    this.timers.logAtStep(step, ENGINE_TIMER_NAMES);
  }

  close(): void {
    this.csv.close();
  }
}
