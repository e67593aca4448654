/**
 * What the ranks of the multi-process tests do. Inputs are small integers, so every sum, max and min is
 * exact in every dtype and the expected result is known without caring about the reduction order.
 */
import { createHash } from 'node:crypto';
import {
  type CommBuffer,
  type CommDtype,
  fp32ToBf16 as floatToBf16,
  fp32ToFp16 as floatToFp16,
  type ProcessGroup,
  type ReduceOp,
} from '@zeroflow/core';

type Report = (r: unknown) => void;
type Scenario = (world: ProcessGroup, report: Report) => Promise<void>;

const DTYPES: CommDtype[] = ['float32', 'float16', 'bfloat16', 'int32'];
const OPS: ReduceOp[] = ['sum', 'avg', 'max', 'min'];

function value(rank: number, i: number): number {
  return (rank + 1) * (i % 13) - 6;
}

function encode(dtype: CommDtype, v: number): number {
  return dtype === 'float16' ? floatToFp16(v) : dtype === 'bfloat16' ? floatToBf16(v) : v;
}

function make(dtype: CommDtype, n: number, fill: (i: number) => number): CommBuffer {
  const b = dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : new Uint16Array(n);
  for (let i = 0; i < n; i++) b[i] = encode(dtype, fill(i));
  return b;
}

function expected(dtype: CommDtype, op: ReduceOp, ranks: readonly number[], i: number): number {
  const vals = ranks.map((r) => value(r, i));
  const sum = vals.reduce((a, b) => a + b, 0);
  const v =
    op === 'sum'
      ? sum
      : op === 'max'
        ? Math.max(...vals)
        : op === 'min'
          ? Math.min(...vals)
          : dtype === 'int32'
            ? Math.trunc(sum / vals.length)
            : Math.fround(sum / vals.length);
  return encode(dtype, v);
}

function check(what: string, got: CommBuffer, want: (i: number) => number): void {
  for (let i = 0; i < got.length; i++) {
    const w = want(i);
    if (got[i] !== w && !(Number.isNaN(got[i]) && Number.isNaN(w))) {
      throw new Error(`${what}: element ${i} is ${got[i]}, expected ${w}`);
    }
  }
}

/** Every collective, dtype and op on `g`, with global ranks `g.ranks`. */
async function exercise(g: ProcessGroup, label: string, sizes: number[], big: number): Promise<number> {
  let checks = 0;
  const opt = (dtype: CommDtype) => ({ dtype });
  for (const dtype of DTYPES) {
    for (const op of OPS) {
      for (const n of [...sizes, ...(op === 'sum' && dtype !== 'int32' ? [big] : [])]) {
        const buf = make(dtype, n, (i) => value(g.ranks[g.rank], i));
        // alternate the blocking and the promise path
        const w = g.allReduce(buf, op, opt(dtype));
        if (n % 2 === 0) await w.promise;
        else w.wait();
        check(`${label} allReduce ${dtype} ${op} n=${n}`, buf, (i) => expected(dtype, op, g.ranks, i));
        checks++;
      }
    }
    for (const n of sizes) {
      const input = make(dtype, n * g.size, (i) => value(g.ranks[g.rank], i));
      const out = make(dtype, n, () => 0);
      g.reduceScatter(out, input, 'sum', opt(dtype)).wait();
      check(`${label} reduceScatter ${dtype} n=${n}`, out, (i) => expected(dtype, 'sum', g.ranks, g.rank * n + i));
      check(`${label} reduceScatter keeps its input`, input, (i) => encode(dtype, value(g.ranks[g.rank], i)));
      const gathered = make(dtype, n * g.size, () => 0);
      await g.allGather(
        gathered,
        make(dtype, n, (i) => value(g.ranks[g.rank], i)),
        opt(dtype),
      ).promise;
      check(`${label} allGather ${dtype} n=${n}`, gathered, (i) =>
        encode(dtype, value(g.ranks[Math.floor(i / n)], i % n)),
      );
      for (let root = 0; root < g.size; root++) {
        const b = make(dtype, n, (i) => (g.rank === root ? value(g.ranks[root], i) : 99));
        g.broadcast(b, root, opt(dtype)).wait();
        check(`${label} broadcast ${dtype} n=${n} root=${root}`, b, (i) => encode(dtype, value(g.ranks[root], i)));
      }
      checks += 2 + g.size;
    }
  }
  g.barrier().wait();
  return checks;
}

export const scenarios: Record<string, Scenario> = {
  async collectives(world, report) {
    let checks = await exercise(world, 'world', [1, 7, 1031], 1_000_003);
    // send/recv around the ring with two tags, large enough to need several segments
    if (world.size > 1) {
      const next = (world.rank + 1) % world.size;
      const prev = (world.rank - 1 + world.size) % world.size;
      const a = new Float32Array(300_001).map((_, i) => world.rank * 1000 + (i % 97));
      const b = new Int32Array(5).fill(world.rank);
      const ra = new Float32Array(a.length);
      const rb = new Int32Array(5);
      const works = [world.recv(rb, prev, 7), world.recv(ra, prev, 3), world.send(b, next, 7), world.send(a, next, 3)];
      for (const w of works) w.wait();
      check('send/recv tag 3', ra, (i) => prev * 1000 + (i % 97));
      check('send/recv tag 7', rb, () => prev);
      checks += 2;
    }
    // sub-groups: evens and odds (every member creates both, in the same order)
    if (world.size >= 3) {
      const evens = world.newGroup(world.ranks.filter((r) => r % 2 === 0));
      const odds = world.newGroup(world.ranks.filter((r) => r % 2 === 1));
      const mine = (world.rank % 2 === 0 ? evens : odds)!;
      if ((world.rank % 2 === 0 ? odds : evens) !== null) throw new Error('newGroup gave a group to a non-member');
      checks += await exercise(mine, `group[${mine.ranks}]`, [1, 5], 1001);
      world.barrier().wait();
    }
    report({ rank: world.rank, checks });
  },

  /** Random floats: prints a hash of the allReduce result, for determinism across runs and ranks. */
  async determinism(world, report) {
    let seed = 1234 + world.rank;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32 - 0.5;
    };
    const f32 = new Float32Array(100_003).map(() => rand() * 1e3);
    const bf = new Uint16Array(10_007).map(() => floatToBf16(rand()));
    world.allReduce(f32, 'sum').wait();
    world.allReduce(bf, 'avg', { dtype: 'bfloat16' }).wait();
    const hash = createHash('sha256')
      .update(new Uint8Array(f32.buffer))
      .update(new Uint8Array(bf.buffer))
      .digest('hex');
    report({ rank: world.rank, hash });
  },

  /** Rank 1 calls allGather where the others call allReduce (at sequence 1). */
  async mismatch(world) {
    world.allReduce(new Float32Array(16), 'sum').wait();
    if (world.rank === 1) world.allGather(new Float32Array(1024 * world.size), new Float32Array(1024)).wait();
    else world.allReduce(new Float32Array(1024), 'sum').wait();
    throw new Error('the mismatched collective did not fail');
  },

  /** All ranks loop allReduce; the test kills one of them. */
  async loop(world) {
    const buf = new Float32Array(1 << 16);
    for (let i = 0; ; i++) {
      world.allReduce(buf, 'sum').wait();
      if (i === 3) process.stdout.write('LOOPING\n');
    }
  },

  /** Bus bandwidth of a 64 MB fp32 allReduce (one-off measurement, not part of the test suite). */
  async bench(world, report) {
    const n = (Number(process.env.ZF_BENCH_MB ?? 64) * 1024 * 1024) / 4;
    const shared = process.env.ZF_BENCH_SHARED === '1';
    const buf = shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
    buf.fill(1);
    world.allReduce(buf, 'sum').wait();
    const times: number[] = [];
    for (let it = 0; it < 5; it++) {
      world.barrier().wait();
      const t0 = performance.now();
      world.allReduce(buf, 'sum').wait();
      times.push((performance.now() - t0) / 1000);
    }
    const best = Math.min(...times);
    const busGBs = (((2 * (world.size - 1)) / world.size) * ((n * 4) / best)) / 1e9;
    report({ rank: world.rank, best, busGBs, times });
  },
};
