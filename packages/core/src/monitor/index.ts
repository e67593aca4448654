// Monitoring: logger, progress bar, step summaries, CSV monitor, wall-clock timers (DeepSpeed's equivalents).
export {
  CsvMonitor,
  type CsvMonitorConfig,
  type CsvMonitorOptions,
  type Monitor,
  type MonitorEvent,
} from './csv-monitor.js';
export { Logger, type LoggerOptions, type LogLevel } from './logger.js';
export { ProgressBar, type ProgressBarOptions, type ProgressUpdate } from './progress-bar.js';
export { type StepSummary, StepSummaryLogger, type StepSummaryOptions } from './step-summary.js';
export {
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
  rankPrefix,
  setLiveLine,
  writeLine,
} from './terminal.js';
export {
  ENGINE_TIMERS,
  TIMER_NAMES,
  Timer,
  type TimerLogOptions,
  trimmedMean,
  WallClockTimers,
  type WallClockTimersOptions,
} from './timers.js';
