import type { CollectiveOptions, CommBuffer, ProcessGroup, Work } from '../comm/types.js';
import type { Parameter } from '../nn/parameter.js';
import type { FlatGroup } from './flat-params.js';

/** A contiguous range of one flat gradient buffer, reduced as one collective. */
interface Bucket {
  group: number;
  start: number;
  end: number;
  members: Parameter[];
}

/**
 * Gradient buckets reduced while backward runs (DESIGN.md section 6). Membership and launch order are
 * fixed by parameter order, never by the order in which gradients arrive (DeepSpeed issue #2343): buckets
 * are launched strictly in their index order, a bucket completing early simply waits for its turn, so every
 * rank issues the same collectives in the same order. A parameter's gradient is complete when every use
 * counted in forward has delivered its gradient (a tied weight is used twice).
 */
export class GradientBuckets {
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Parameter, number>();
  private readonly usesLeft = new Map<Parameter, number>();
  private membersLeft: number[] = [];
  private nextLaunch = 0;
  private works: Work[] = [];
  private active = false;

  /**
   * @param bucketElements most elements per bucket (`reduce_bucket_size`); a larger parameter gets its own
   * @param launch starts the reduction of one bucket's range and returns its work handle
   */
  constructor(
    groups: FlatGroup[],
    bucketElements: number,
    private readonly launch: (group: number, start: number, end: number) => Work,
  ) {
    // Walk parameters from last to first (the order backward produces them) and cut buckets.
    const order: { group: number; entry: FlatGroup['entries'][number]; modelIndex: number }[] = [];
    let idx = 0;
    const modelIndex = new Map<Parameter, number>();
    for (const g of groups) for (const e of g.entries) modelIndex.set(e.param, idx++);
    for (const g of groups)
      for (const e of g.entries) order.push({ group: g.index, entry: e, modelIndex: modelIndex.get(e.param)! });
    order.sort((a, b) => b.modelIndex - a.modelIndex);
    const open = new Map<number, Bucket>();
    const close = (group: number) => {
      const b = open.get(group);
      if (b) this.buckets.push(b);
      open.delete(group);
    };
    for (const { group, entry } of order) {
      let b = open.get(group);
      // entries of one group run in increasing offset; walking backwards, a bucket grows downwards
      if (b && (b.end - entry.offset > bucketElements || entry.offset + entry.size !== b.start)) {
        close(group);
        b = undefined;
      }
      if (!b) {
        b = { group, start: entry.offset, end: entry.offset + entry.size, members: [] };
        open.set(group, b);
      }
      b.start = entry.offset;
      b.members.push(entry.param);
    }
    for (const g of [...open.keys()]) close(g);
    // the padding at the end of each group belongs to the bucket holding the group's last parameter
    for (const g of groups) {
      const last = this.buckets.find((b) => b.group === g.index && b.end === g.size);
      if (last) last.end = g.paddedSize;
    }
    this.buckets.forEach((b, i) => {
      for (const p of b.members) this.bucketOf.set(p, i);
    });
  }

  get count(): number {
    return this.buckets.length;
  }

  /** Starts counting for one backward whose gradients must be reduced. */
  begin(): void {
    this.active = true;
    this.usesLeft.clear();
    this.membersLeft = this.buckets.map((b) => b.members.length);
    this.nextLaunch = 0;
  }

  onUse(p: Parameter): void {
    if (this.active) this.usesLeft.set(p, (this.usesLeft.get(p) ?? 0) + 1);
  }

  /** Called after `p`'s gradient was accumulated. */
  onGrad(p: Parameter): void {
    if (!this.active) return;
    const left = (this.usesLeft.get(p) ?? 1) - 1;
    this.usesLeft.set(p, left);
    if (left !== 0) return;
    const b = this.bucketOf.get(p);
    if (b === undefined) return;
    this.membersLeft[b]--;
    while (this.nextLaunch < this.buckets.length && this.membersLeft[this.nextLaunch] === 0) this.launchNext();
  }

  /** After backward: launches every bucket not launched yet (parameters unused in this forward), in order. */
  flush(): void {
    if (!this.active) return;
    while (this.nextLaunch < this.buckets.length) this.launchNext();
    this.active = false;
  }

  /** Waits for every launched reduction. */
  waitAll(): void {
    const ws = this.works;
    this.works = [];
    for (const w of ws) w.wait();
  }

  private launchNext(): void {
    const b = this.buckets[this.nextLaunch++];
    this.works.push(this.launch(b.group, b.start, b.end));
  }
}

/** Reduces `buf[start, end)` over `comm` by sum (`opts.dtype` names a 16-bit buffer's format). */
export function allReduceRange(
  comm: ProcessGroup,
  buf: CommBuffer,
  start: number,
  end: number,
  opts?: CollectiveOptions,
): Work {
  return comm.allReduce(buf.subarray(start, end), 'sum', opts);
}
