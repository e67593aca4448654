import { describe, expect, it } from 'vitest';
import {
  CommError,
  CommsLogger,
  type CommsReport,
  formatCommsTable,
  LoggedProcessGroup,
  type ProcessGroup,
  ringWireBytes,
  type Work,
} from '../src/comm/index.js';

/** A Work the test completes by hand; `wait()` on an unfinished one completes it (a blocking backend would). */
class ManualWork implements Work {
  done = false;
  private resolveFn!: () => void;
  private rejectFn!: (e: Error) => void;
  readonly promise = new Promise<void>((res, rej) => {
    this.resolveFn = res;
    this.rejectFn = rej;
  });
  constructor(
    private readonly clock: { t: number },
    private readonly failWith?: Error,
  ) {
    this.promise.catch(() => {});
  }
  complete(): void {
    this.done = true;
    if (this.failWith) this.rejectFn(this.failWith);
    else this.resolveFn();
  }
  wait(): void {
    if (!this.done) {
      this.clock.t += 5;
      this.complete();
    }
    if (this.failWith) throw this.failWith;
  }
  isCompleted(): boolean {
    return this.done;
  }
}

/** A group that records what reached it and hands out ManualWorks. */
class FakeGroup implements ProcessGroup {
  readonly backend = 'fake';
  readonly calls: string[] = [];
  readonly works: ManualWork[] = [];
  failNext: Error | undefined;
  constructor(
    readonly rank: number,
    readonly size: number,
    readonly clock: { t: number },
    readonly ranks: readonly number[] = Array.from({ length: size }, (_, i) => i),
  ) {}
  private work(kind: string): Work {
    this.calls.push(kind);
    const w = new ManualWork(this.clock, this.failNext);
    this.failNext = undefined;
    this.works.push(w);
    return w;
  }
  allReduce = () => this.work('allReduce');
  reduceScatter = () => this.work('reduceScatter');
  allGather = () => this.work('allGather');
  broadcast = () => this.work('broadcast');
  barrier = () => this.work('barrier');
  send = (_b: unknown, dst: number) => {
    if (dst >= this.size) throw new CommError(`bad rank ${dst}`);
    return this.work('send');
  };
  recv = () => this.work('recv');
  newGroup(ranks: number[]): ProcessGroup | null {
    return ranks.includes(this.ranks[this.rank])
      ? new FakeGroup(ranks.indexOf(this.ranks[this.rank]), ranks.length, this.clock, ranks)
      : null;
  }
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
  }
}

function collect(): { lines: string[]; stream: { write(s: string): void } } {
  const lines: string[] = [];
  return { lines, stream: { write: (s: string) => lines.push(...s.trimEnd().split('\n')) } };
}

function setup(n: number, opts: ConstructorParameters<typeof CommsLogger>[0] = {}) {
  const clock = { t: 0 };
  const inner = new FakeGroup(0, n, clock);
  const out = collect();
  const group = new LoggedProcessGroup(inner, { rank: 0, stream: out.stream, now: () => clock.t, ...opts });
  return { clock, inner, group, out };
}

const op = (r: CommsReport, name: string) => r.ops.find((o) => o.name === name);

describe('ringWireBytes', () => {
  it('follows the ring formulas and sends nothing in a group of one', () => {
    expect(ringWireBytes('allReduce', 1000, 4)).toBe(1500);
    expect(ringWireBytes('reduceScatter', 1000, 4)).toBe(750);
    expect(ringWireBytes('allGather', 1000, 2)).toBe(500);
    expect(ringWireBytes('broadcast', 1000, 8)).toBe(1000);
    expect(ringWireBytes('send', 64, 2)).toBe(64);
    expect(ringWireBytes('recv', 64, 2)).toBe(0);
    expect(ringWireBytes('barrier', 0, 4)).toBe(0);
    expect(ringWireBytes('allReduce', 1000, 1)).toBe(0);
  });
});

describe('LoggedProcessGroup', () => {
  it('counts calls, message bytes (first buffer) and wire bytes per op, and passes every call through', () => {
    const { inner, group } = setup(4);
    const big = new Float32Array(1000); // 4000 bytes
    group.allReduce(big).wait();
    group.allReduce(big).wait();
    group.reduceScatter(new Float32Array(250), big).wait();
    group.allGather(big, new Float32Array(250)).wait();
    group.broadcast(new Int32Array(10), 0).wait();
    group.send(new Uint16Array(8), 1, 0, { dtype: 'bfloat16' }).wait();
    group.recv(new Float32Array(4), 1).wait();
    group.barrier().wait();
    expect(inner.calls).toEqual([
      'allReduce',
      'allReduce',
      'reduceScatter',
      'allGather',
      'broadcast',
      'send',
      'recv',
      'barrier',
    ]);
    const r = group.logger.stepSummary();
    expect(op(r, 'all_reduce')).toMatchObject({ calls: 2, msgBytes: 8000, wireBytes: 12000, completed: 2 });
    // reduce_scatter: msg = the output (DeepSpeed's first tensor), wire from the whole input
    expect(op(r, 'reduce_scatter')).toMatchObject({ calls: 1, msgBytes: 1000, fullBytes: 4000, wireBytes: 3000 });
    expect(op(r, 'all_gather')).toMatchObject({ calls: 1, msgBytes: 4000, wireBytes: 3000 });
    expect(op(r, 'broadcast')).toMatchObject({ msgBytes: 40, wireBytes: 40 });
    expect(op(r, 'send')).toMatchObject({ msgBytes: 16, wireBytes: 16 });
    expect(op(r, 'recv')).toMatchObject({ msgBytes: 16, wireBytes: 0 });
    expect(op(r, 'barrier')).toMatchObject({ calls: 1, msgBytes: 0, wireBytes: 0 });
    expect(r.total).toMatchObject({ calls: 8, wireBytes: 12000 + 3000 + 3000 + 40 + 16 });
    expect(r.ops.map((o) => o.name)).toEqual([...r.ops.map((o) => o.name)].sort());
    expect(group.rank).toBe(0);
    expect(group.size).toBe(4);
    expect(group.backend).toBe('fake');
    group.destroy();
    expect(inner.destroyed).toBe(true);
  });

  it('times from call to completion through wait, promise or isCompleted, once each', async () => {
    const { clock, inner, group } = setup(2);
    const a = group.allReduce(new Float32Array(4));
    const b = group.allGather(new Float32Array(4), new Float32Array(2));
    const c = group.broadcast(new Float32Array(4), 0);
    clock.t = 7;
    a.wait(); // the fake blocking wait takes 5 ms: done at t=12
    expect(a.isCompleted()).toBe(true);
    clock.t = 20;
    inner.works[1].complete();
    await b.promise;
    clock.t = 30;
    inner.works[2].complete();
    expect(c.isCompleted()).toBe(true);
    clock.t = 99;
    a.wait(); // already counted
    await c.promise;
    const r = group.logger.stepSummary();
    expect(op(r, 'all_reduce')).toMatchObject({ completed: 1, latencyMs: 12 });
    expect(op(r, 'all_gather')).toMatchObject({ completed: 1, latencyMs: 20 });
    expect(op(r, 'broadcast')).toMatchObject({ completed: 1, latencyMs: 30 });
  });

  it('propagates failures, still timing the op; a call the backend rejects is not counted', async () => {
    const { inner, group } = setup(2);
    inner.failNext = new CommError('peer 1 vanished');
    const w = group.allReduce(new Float32Array(4));
    expect(() => w.wait()).toThrow('peer 1 vanished');
    inner.failNext = new CommError('timeout');
    const p = group.allReduce(new Float32Array(4));
    inner.works[1].complete();
    await expect(p.promise).rejects.toThrow('timeout');
    expect(() => group.send(new Float32Array(1), 5)).toThrow('bad rank 5');
    const r = group.logger.stepSummary();
    expect(op(r, 'all_reduce')).toMatchObject({ calls: 2, completed: 2 });
    expect(op(r, 'send')).toBeUndefined();
  });

  it('stepSummary resets the step window; totals keep everything; an op in flight lands where it completes', () => {
    const { group } = setup(2);
    group.allReduce(new Float32Array(8)).wait();
    const pending = group.allReduce(new Float32Array(8));
    const s1 = group.logger.stepSummary();
    expect(op(s1, 'all_reduce')).toMatchObject({ calls: 2, completed: 1 });
    pending.wait();
    const s2 = group.logger.stepSummary();
    expect(op(s2, 'all_reduce')).toMatchObject({ calls: 0, completed: 1, wireBytes: 0 });
    expect(group.logger.stepSummary().ops).toEqual([]);
    expect(op(group.logger.totals(), 'all_reduce')).toMatchObject({ calls: 2, completed: 2, wireBytes: 64 });
  });

  it('groups by message size, as DeepSpeed summary rows', () => {
    const { group } = setup(2);
    for (const n of [4, 4, 16]) group.allReduce(new Float32Array(n)).wait();
    const r = group.logger.totals();
    expect(op(r, 'all_reduce')!.sizes.map((s) => [s.size, s.calls])).toEqual([
      [16, 2],
      [64, 1],
    ]);
    const table = formatCommsTable(r).split('\n');
    expect(table[0]).toMatch(/^Comm\. Op\s+Message Size\s+Count\s+Total Latency\(ms\)/);
    expect(table[1]).toBe('all_reduce');
    expect(table[2]).toMatch(/^\s+16B\s+2\s+10\.00\s+5\.00/);
  });

  it('newGroup returns a logged sub-group sharing the logger, with wire bytes from its own size', () => {
    const { group } = setup(4);
    const sub = group.newGroup([0, 1]) as LoggedProcessGroup;
    expect(sub).toBeInstanceOf(LoggedProcessGroup);
    expect(sub.logger).toBe(group.logger);
    expect(sub.size).toBe(2);
    expect(group.newGroup([2, 3])).toBeNull();
    sub.allReduce(new Float32Array(100)).wait(); // 400 bytes over 2 ranks: 400 on the wire
    group.allReduce(new Float32Array(100)).wait(); // over 4 ranks: 600
    expect(group.logger.totals().total.wireBytes).toBe(1000);
  });
});

describe('comms_logger options', () => {
  it('prof_all false counts only prof_ops (DeepSpeed or ZeroFlow names) and passes the others through', () => {
    const { inner, group } = setup(2, { prof_all: false, prof_ops: ['all_gather_into_tensor', 'allReduce', 'reduce'] });
    group.allReduce(new Float32Array(4)).wait();
    group.allGather(new Float32Array(4), new Float32Array(2)).wait();
    const plain = group.broadcast(new Float32Array(4), 0);
    plain.wait();
    expect(plain).toBe(inner.works[2]); // unwrapped: no overhead for ops not profiled
    expect(group.logger.totals().ops.map((o) => o.name)).toEqual(['all_gather', 'all_reduce']);
  });

  it('rejects an unknown op name in prof_ops', () => {
    expect(() => new CommsLogger({ prof_all: false, prof_ops: ['all_reduse'] })).toThrow(
      /prof_ops: unknown op "all_reduse".*all_reduce/,
    );
  });

  it('verbose prints every completed op on rank 0 only', () => {
    const { group, out } = setup(2, { verbose: true });
    group.allReduce(new Float32Array(256)).wait();
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toMatch(
      /^\[rank 0\] comm op: all_reduce \| time \(ms\): 5\.00 \| msg size: 1\.0K \| wire: 1\.0K \| algbw \(Gbps\): 0\.00 \| busbw \(Gbps\): 0\.00$/,
    );
    const other = collect();
    const r1 = new LoggedProcessGroup(new FakeGroup(1, 2, { t: 0 }), { verbose: true, rank: 1, stream: other.stream });
    r1.allReduce(new Float32Array(4)).wait();
    expect(other.lines).toEqual([]);
  });

  it('debug keys the counts by calling function', () => {
    const { group } = setup(2, { debug: true });
    function reduceGradients() {
      group.allReduce(new Float32Array(4)).wait();
    }
    reduceGradients();
    expect(group.logger.totals().ops.map((o) => o.name)).toEqual(['all_reduce | [Caller Func: reduceGradients]']);
  });

  it('afterStep prints per-step averages every stepsPerPrint steps on rank 0', () => {
    const { group, out } = setup(2);
    for (let step = 1; step <= 4; step++) {
      group.allReduce(new Float32Array(step * 256)).wait();
      const s = group.logger.afterStep(step, 2);
      expect(s.steps).toBe(1);
      expect(s.total.msgBytes).toBe(step * 1024);
    }
    expect(out.lines).toEqual([
      '[rank 0] comms step=2 (per step over 2): all_reduce 1x msg 1.5K wire 1.5K 5.0ms | total wire 1.5K, busbw 0.00 Gbps',
      '[rank 0] comms step=4 (per step over 2): all_reduce 1x msg 3.5K wire 3.5K 5.0ms | total wire 3.5K, busbw 0.01 Gbps',
    ]);
    group.logger.logSummary();
    expect(out.lines[2]).toMatch(/^Comm\. Op/);
    expect(group.logger.totals().total.calls).toBe(4);
  });
});
