/**
 * DeepSpeed's comms logger (deepspeed/utils/comms_logging.py, config section `comms_logger`) for ZeroFlow:
 * {@link LoggedProcessGroup} wraps any ProcessGroup and counts, per collective, the calls, the message bytes,
 * the bytes this rank puts on the wire and the time from call to completion, per optimizer step and in total.
 *
 * Wire bytes are algorithmic, for the ring (and chain-pipelined broadcast) algorithms both backends use, with
 * n the group size and S the bytes of the full buffer of the operation:
 *  - allReduce: 2(n-1)/n * S (reduce-scatter then all-gather around the ring);
 *  - reduceScatter: (n-1)/n * S, S = the whole input (n blocks);
 *  - allGather: (n-1)/n * S, S = the whole output (n blocks);
 *  - broadcast: S (each rank but the chain's last forwards every segment once; the busbw convention of
 *    nccl-tests, so rank 0's figure is what every rank of a long chain sends);
 *  - send: S; recv and barrier: 0. A group of one sends nothing.
 * Wire bytes over latency is then nccl-tests' "busbw", comparable across collectives and group sizes.
 */
import { ZeroFlowError } from '../errors.js';
import { formatBytes, type OutputStream, rankFromEnv, rankPrefix, writeLine } from '../monitor/terminal.js';
import type { CollectiveOptions, CommBuffer, ProcessGroup, ReduceOp, Work } from './types.js';

/** The operations of a ProcessGroup that the logger counts. */
export type CommOpKind = 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast' | 'barrier' | 'send' | 'recv';

/** DeepSpeed's name of each operation: what the logs print and what `prof_ops` lists. */
export const DEEPSPEED_COMM_OP_NAMES: Readonly<Record<CommOpKind, string>> = {
  allReduce: 'all_reduce',
  reduceScatter: 'reduce_scatter',
  allGather: 'all_gather',
  broadcast: 'broadcast',
  barrier: 'barrier',
  send: 'send',
  recv: 'recv',
};

// DeepSpeed's other spellings of the same operations (tensor and coalesced variants), valid in prof_ops.
const PROF_OP_ALIASES: Readonly<Record<string, CommOpKind>> = {
  all_reduce_coalesced: 'allReduce',
  inference_all_reduce: 'allReduce',
  reduce_scatter_tensor: 'reduceScatter',
  reduce_scatter_base: 'reduceScatter',
  reduce_scatter_fn: 'reduceScatter',
  all_gather_into_tensor: 'allGather',
  all_gather_base: 'allGather',
  allgather_fn: 'allGather',
  all_gather_coalesced: 'allGather',
  monitored_barrier: 'barrier',
  isend: 'send',
  irecv: 'recv',
};
// DeepSpeed ops ZeroFlow has no collective for: a DeepSpeed config may list them; they never occur.
const OPS_WITHOUT_COUNTERPART = new Set(['all_to_all_single', 'all_to_all', 'reduce', 'gather', 'scatter']);

/** Bytes this rank sends for one operation over `n` ranks (see the module comment for the formulas). */
export function ringWireBytes(kind: CommOpKind, bytes: number, n: number): number {
  if (n <= 1) return 0;
  switch (kind) {
    case 'allReduce':
      return (2 * (n - 1) * bytes) / n;
    case 'reduceScatter':
    case 'allGather':
      return ((n - 1) * bytes) / n;
    case 'broadcast':
    case 'send':
      return bytes;
    case 'barrier':
    case 'recv':
      return 0;
  }
}

/** Options of a {@link CommsLogger}: the keys of DeepSpeed's `comms_logger` section, plus where to print. */
export interface CommsLoggerOptions {
  /** Not read here: the engine wraps its `comm` service only when `comms_logger.enabled` is true. */
  enabled?: boolean;
  /** Count every operation (default true); when false, only those named in `prof_ops`. */
  prof_all?: boolean;
  /** DeepSpeed op names (`all_reduce`, `reduce_scatter_tensor`, ...) or ZeroFlow's (`allReduce`). */
  prof_ops?: readonly string[];
  /** Print a line for every operation as it completes (rank 0). */
  verbose?: boolean;
  /** Key the counts by op and calling function, as DeepSpeed's `op | [Caller Func: f]` (costs a stack trace). */
  debug?: boolean;
  /** Only global rank 0 prints; default from the launcher's environment. */
  rank?: number;
  /** Default `process.stdout`. */
  stream?: OutputStream;
  /** Clock in ms (default `performance.now`); tests inject one. */
  now?: () => number;
}

/** What was counted for a set of calls. */
export interface CommCounts {
  calls: number;
  /** Summed bytes of the first buffer argument, DeepSpeed's "msg size" (reduceScatter, allGather: the output). */
  msgBytes: number;
  /** Summed bytes of the full buffers (the S of {@link ringWireBytes}: reduceScatter's input, allGather's output). */
  fullBytes: number;
  /** Bytes this rank sent ({@link ringWireBytes}). */
  wireBytes: number;
  /** Calls that completed in the window, and their summed call-to-completion time in ms. */
  completed: number;
  latencyMs: number;
}

/** The counts of one operation; `sizes` are the rows of DeepSpeed's summary table, by message size. */
export interface CommOpStats extends CommCounts {
  /** DeepSpeed's op name, with `| [Caller Func: f]` under `debug`. */
  name: string;
  kind: CommOpKind;
  /** Per message size (bytes of one call's message), ascending. */
  sizes: (CommCounts & { size: number })[];
}

/** What the logger counted over a window (one step, the steps between prints, or everything). */
export interface CommsReport {
  /** Optimizer steps the window covers (0 for a window outside steps, e.g. setup). */
  steps: number;
  /** Per operation, by name. */
  ops: CommOpStats[];
  total: CommCounts;
}

const COUNT_KEYS = ['calls', 'msgBytes', 'fullBytes', 'wireBytes', 'completed', 'latencyMs'] as const;
const zeroCounts = (): CommCounts => ({
  calls: 0,
  msgBytes: 0,
  fullBytes: 0,
  wireBytes: 0,
  completed: 0,
  latencyMs: 0,
});
function addCounts(into: CommCounts, from: CommCounts): void {
  for (const k of COUNT_KEYS) into[k] += from[k];
}

/** Counts of one window, keyed by op name then message size. */
class Tally {
  readonly byName = new Map<string, { kind: CommOpKind; sizes: Map<number, CommCounts> }>();
  steps = 0;

  entry(name: string, kind: CommOpKind, size: number): CommCounts {
    let op = this.byName.get(name);
    if (!op) this.byName.set(name, (op = { kind, sizes: new Map() }));
    let c = op.sizes.get(size);
    if (!c) op.sizes.set(size, (c = zeroCounts()));
    return c;
  }

  merge(other: Tally): void {
    this.steps += other.steps;
    for (const [name, op] of other.byName)
      for (const [size, c] of op.sizes) addCounts(this.entry(name, op.kind, size), c);
  }

  report(): CommsReport {
    const total = zeroCounts();
    const ops = [...this.byName.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, op]): CommOpStats => {
        const stats: CommOpStats = { name, kind: op.kind, ...zeroCounts(), sizes: [] };
        for (const [size, c] of [...op.sizes].sort(([a], [b]) => a - b)) {
          stats.sizes.push({ size, ...c });
          addCounts(stats, c);
        }
        addCounts(total, stats);
        return stats;
      });
    return { steps: this.steps, ops, total };
  }
}

/** Gbit/s from bytes and ms, as DeepSpeed prints bandwidths. */
function gbps(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 8) / (ms * 1e6) : 0;
}

/**
 * The counters behind one or more {@link LoggedProcessGroup}s (a group and its sub-groups share one, as
 * DeepSpeed's logger is one per process). Windows: the current step ({@link stepSummary} takes and resets
 * it), the steps since the last print, and the totals since creation.
 */
export class CommsLogger {
  readonly verbose: boolean;
  readonly debug: boolean;
  private readonly profiled: Set<CommOpKind>;
  private readonly rank: number;
  private readonly stream: OutputStream;
  private readonly now: () => number;
  private step = new Tally();
  private printWindow = new Tally();
  private readonly all = new Tally();

  constructor(opts: CommsLoggerOptions = {}) {
    this.verbose = opts.verbose ?? false;
    this.debug = opts.debug ?? false;
    this.rank = opts.rank ?? rankFromEnv();
    this.stream = opts.stream ?? process.stdout;
    this.now = opts.now ?? (() => performance.now());
    const kinds = Object.keys(DEEPSPEED_COMM_OP_NAMES) as CommOpKind[];
    if (opts.prof_all ?? true) {
      this.profiled = new Set(kinds);
    } else {
      this.profiled = new Set();
      for (const name of opts.prof_ops ?? []) {
        const kind =
          kinds.find((k) => k === name || DEEPSPEED_COMM_OP_NAMES[k] === name) ?? PROF_OP_ALIASES[name] ?? null;
        if (kind) this.profiled.add(kind);
        else if (!OPS_WITHOUT_COUNTERPART.has(name))
          throw new ZeroFlowError(
            `comms_logger.prof_ops: unknown op "${name}"; known: ${kinds.map((k) => DEEPSPEED_COMM_OP_NAMES[k]).join(', ')}`,
          );
      }
    }
  }

  /** Whether operations of `kind` are counted (`prof_all`, else `prof_ops`). */
  profiles(kind: CommOpKind): boolean {
    return this.profiled.has(kind);
  }

  /** The logger's clock, ms. */
  clock(): number {
    return this.now();
  }

  /**
   * Counts one call issued at `started` (see {@link clock}); returns the function to call once, when it
   * completes. `fullBytes` is the S of {@link ringWireBytes}. @internal used by LoggedProcessGroup
   */
  begin(kind: CommOpKind, msgBytes: number, fullBytes: number, groupSize: number, started: number): () => void {
    const name = this.debug
      ? `${DEEPSPEED_COMM_OP_NAMES[kind]} | [Caller Func: ${callerName()}]`
      : DEEPSPEED_COMM_OP_NAMES[kind];
    const wire = ringWireBytes(kind, fullBytes, groupSize);
    for (const t of [this.step, this.all]) {
      const e = t.entry(name, kind, msgBytes);
      e.calls++;
      e.msgBytes += msgBytes;
      e.fullBytes += fullBytes;
      e.wireBytes += wire;
    }
    return () => {
      const ms = this.now() - started;
      // lands in the window where it completes: an op still in flight at a step's end counts in the next
      for (const t of [this.step, this.all]) {
        const e = t.entry(name, kind, msgBytes);
        e.completed++;
        e.latencyMs += ms;
      }
      if (this.verbose && this.rank === 0) {
        writeLine(
          this.stream,
          `${rankPrefix(this.rank)}comm op: ${name} | time (ms): ${ms.toFixed(2)} | msg size: ${formatBytes(msgBytes)} | wire: ${formatBytes(wire)} | algbw (Gbps): ${gbps(fullBytes, ms).toFixed(2)} | busbw (Gbps): ${gbps(wire, ms).toFixed(2)}`,
        );
      }
    };
  }

  /** What was counted since the last call (one optimizer step when the engine drives it); resets the window. */
  stepSummary(): CommsReport {
    const done = this.step;
    this.step = new Tally();
    this.printWindow.merge(done);
    return done.report();
  }

  /** Everything counted since the logger was created. */
  totals(): CommsReport {
    return this.all.report();
  }

  /**
   * Ends optimizer step `step`: takes its summary (counted as one step) and, on rank 0 every `stepsPerPrint`
   * steps, prints one line with the per-step averages of the steps since the last print. Returns the step's
   * summary.
   */
  afterStep(step: number, stepsPerPrint: number | null): CommsReport {
    this.step.steps = 1;
    const summary = this.stepSummary();
    if (stepsPerPrint && step > 0 && step % stepsPerPrint === 0) {
      if (this.rank === 0) writeLine(this.stream, formatCommsLine(step, this.printWindow.report()));
      this.printWindow = new Tally();
    }
    return summary;
  }

  /** Prints DeepSpeed's summary table of the totals (`deepspeed.comm.log_summary()`), on rank 0. */
  logSummary(): void {
    if (this.rank === 0) writeLine(this.stream, formatCommsTable(this.totals()));
  }
}

/** The per-step line: `[rank 0] comms step=10 (per step over 10): all_reduce 3x msg 1.2M wire 1.2M 4.5ms | ...`. */
export function formatCommsLine(step: number, window: CommsReport): string {
  const per = Math.max(window.steps, 1);
  const ops = window.ops.map(
    (o) =>
      `${o.name} ${+(o.calls / per).toFixed(1)}x msg ${formatBytes(o.msgBytes / per)} wire ${formatBytes(o.wireBytes / per)} ${(o.latencyMs / per).toFixed(1)}ms`,
  );
  const t = window.total;
  return `${rankPrefix(0)}comms step=${step} (per step over ${per}): ${ops.join(' | ') || 'none'} | total wire ${formatBytes(t.wireBytes / per)}, busbw ${gbps(t.wireBytes, t.latencyMs).toFixed(2)} Gbps`;
}

/** DeepSpeed's `log_summary` table: one row per op and message size, with latency, algbw, busbw and wire bytes. */
export function formatCommsTable(report: CommsReport): string {
  const cols = ['Comm. Op', 'Message Size', 'Count', 'Total Latency(ms)', 'Avg Latency(ms)', 'tput_avg (Gbps)'];
  const row = (cells: string[]) => cells.map((c) => c.padEnd(20)).join('');
  const lines = [row([...cols, 'busbw_avg (Gbps)', 'Wire Bytes'])];
  for (const op of report.ops) {
    lines.push(op.name);
    for (const s of op.sizes) {
      const avg = s.completed ? s.latencyMs / s.completed : 0;
      const perCall = (bytes: number) => (s.calls ? bytes / s.calls : 0);
      lines.push(
        row([
          '',
          formatBytes(s.size),
          String(s.calls),
          s.latencyMs.toFixed(2),
          avg.toFixed(2),
          gbps(perCall(s.fullBytes), avg).toFixed(2),
          gbps(perCall(s.wireBytes), avg).toFixed(2),
          formatBytes(s.wireBytes),
        ]),
      );
    }
  }
  return lines.join('\n');
}

/** The function that called into the logged group (for `debug`), from a stack trace. */
function callerName(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const outside = frames.find((f) => !/CommsLogger|LoggedProcessGroup|callerName/.test(f));
  const m = outside ? /at (?:async )?(?:new )?([^\s(]+) \(/.exec(outside) : null;
  return m ? m[1].replace(/^.*\./, '') : '<anonymous>';
}

/** A Work that reports its completion to the logger the first time anyone sees it complete. */
class LoggedWork implements Work {
  private finished = false;
  private wrapped: Promise<void> | undefined;

  constructor(
    private readonly inner: Work,
    private readonly onDone: () => void,
  ) {}

  wait(): void {
    try {
      this.inner.wait();
    } finally {
      this.finish();
    }
  }

  get promise(): Promise<void> {
    // Only on demand: some backends create their promise lazily, so unasked failures stay unreported.
    this.wrapped ??= this.inner.promise.finally(() => this.finish());
    return this.wrapped;
  }

  isCompleted(): boolean {
    const done = this.inner.isCompleted();
    if (done) this.finish();
    return done;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone();
  }
}

/**
 * A ProcessGroup that counts every operation of the group it wraps in a {@link CommsLogger} and otherwise
 * behaves exactly like it. `newGroup` returns a logged sub-group sharing the same logger.
 *
 * ```ts
 * const world = new LoggedProcessGroup(ctx.world, { prof_all: true });
 * // ... train a step ...
 * const { total } = world.logger.stepSummary(); // total.wireBytes: bytes this rank sent
 * ```
 */
export class LoggedProcessGroup implements ProcessGroup {
  readonly logger: CommsLogger;

  /** @param logger a logger to share, or the options of a new one (e.g. a resolved `comms_logger` section) */
  constructor(
    readonly inner: ProcessGroup,
    logger: CommsLogger | CommsLoggerOptions = {},
  ) {
    this.logger = logger instanceof CommsLogger ? logger : new CommsLogger(logger);
  }

  get rank(): number {
    return this.inner.rank;
  }
  get size(): number {
    return this.inner.size;
  }
  get ranks(): readonly number[] {
    return this.inner.ranks;
  }
  get backend(): string {
    return this.inner.backend;
  }

  allReduce(buf: CommBuffer, op?: ReduceOp, opts?: CollectiveOptions): Work {
    return this.track('allReduce', buf.byteLength, buf.byteLength, () => this.inner.allReduce(buf, op, opts));
  }

  reduceScatter(output: CommBuffer, input: CommBuffer, op?: ReduceOp, opts?: CollectiveOptions): Work {
    return this.track('reduceScatter', output.byteLength, input.byteLength, () =>
      this.inner.reduceScatter(output, input, op, opts),
    );
  }

  allGather(output: CommBuffer, input: CommBuffer, opts?: CollectiveOptions): Work {
    return this.track('allGather', output.byteLength, output.byteLength, () =>
      this.inner.allGather(output, input, opts),
    );
  }

  broadcast(buf: CommBuffer, root: number, opts?: CollectiveOptions): Work {
    return this.track('broadcast', buf.byteLength, buf.byteLength, () => this.inner.broadcast(buf, root, opts));
  }

  barrier(opts?: CollectiveOptions): Work {
    return this.track('barrier', 0, 0, () => this.inner.barrier(opts));
  }

  send(buf: CommBuffer, dst: number, tag?: number, opts?: CollectiveOptions): Work {
    return this.track('send', buf.byteLength, buf.byteLength, () => this.inner.send(buf, dst, tag, opts));
  }

  recv(buf: CommBuffer, src: number, tag?: number, opts?: CollectiveOptions): Work {
    return this.track('recv', buf.byteLength, buf.byteLength, () => this.inner.recv(buf, src, tag, opts));
  }

  newGroup(ranks: number[]): ProcessGroup | null {
    const sub = this.inner.newGroup(ranks);
    return sub ? new LoggedProcessGroup(sub, this.logger) : null;
  }

  destroy(): void {
    this.inner.destroy();
  }

  /** Counts the call once the backend accepted it (a call it rejects, e.g. a bad rank, sent nothing). */
  private track(kind: CommOpKind, msgBytes: number, fullBytes: number, issue: () => Work): Work {
    if (!this.logger.profiles(kind)) return issue();
    const started = this.logger.clock();
    const work = issue();
    return new LoggedWork(work, this.logger.begin(kind, msgBytes, fullBytes, this.inner.size, started));
  }
}
