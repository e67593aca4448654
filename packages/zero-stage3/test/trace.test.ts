/** The prefetch trace and staging pool on their own (the multi-rank behavior is in stage3.test.ts). */
import { Parameter } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import type { ParamSlot } from '../src/layout.js';
import { GatherTrace, StagingPool } from '../src/trace.js';

function slot(index: number, size: number): ParamSlot {
  const param = new Parameter([size], { kind: 'constant', value: 0 }, null);
  return { param, name: `p${index}`, index, group: 0, chunk: size, shardOffset: 0, persistent: false };
}

const [a, b, c] = [slot(0, 10), slot(1, 20), slot(2, 30)];

describe('GatherTrace', () => {
  it('records the first pass, then matches pass after pass', () => {
    const t = new GatherTrace();
    t.begin();
    for (const ev of [[a], [b, c], [a]]) expect(t.next(ev)).toBe('recording');
    expect(t.end()).toBeNull();
    expect(t.length).toBe(3);
    expect(t.largestEvent).toBe(50);
    for (let pass = 0; pass < 2; pass++) {
      t.begin();
      expect(t.next([a])).toBe('match');
      expect(t.position).toBe(0);
      expect(t.at(1)).toEqual([b, c]);
      expect(t.next([b, c])).toBe('match');
      expect(t.next([a])).toBe('match');
      expect(t.end()).toBeNull();
    }
  });

  it('reports a different gather, one past the end, and a pass that stops short', () => {
    const t = new GatherTrace();
    t.begin();
    t.next([a]);
    t.next([b]);
    t.end();
    t.begin();
    expect(t.next([b])).toEqual({ mismatch: 'gather #1 is p1, the trace has p0' });
    t.begin();
    t.next([a]);
    t.next([b]);
    expect(t.next([c])).toEqual({ mismatch: 'gather #3 (p2) is past the 2 traced' });
    t.begin();
    t.next([a]);
    expect(t.end()).toBe('the pass made 1 of the 2 traced gathers');
    t.invalidate();
    t.begin();
    expect(t.next([c])).toBe('recording');
  });

  it('finds the next reuse of the same parameters within a distance in elements', () => {
    const t = new GatherTrace();
    t.begin();
    for (const ev of [[a], [b], [c], [a], [a]]) t.next(ev);
    t.end();
    expect(t.nextReuse(0, 1e9)).toBe(3);
    // b and c (50 elements) go by before the reuse: DeepSpeed's walk stops once the distance is reached
    expect(t.nextReuse(0, 51)).toBe(3);
    expect(t.nextReuse(0, 50)).toBe(-1);
    expect(t.nextReuse(3, 0)).toBe(-1);
    expect(t.nextReuse(3, 1)).toBe(4);
    expect(t.nextReuse(1, 1e9)).toBe(-1);
  });
});

describe('StagingPool', () => {
  it('reuses returned buffers and grows one when a gather needs more', () => {
    const pool = new StagingPool();
    const s1 = pool.take(4, 2);
    expect(s1.input.length).toBe(4);
    expect(s1.output.length).toBe(8);
    expect(s1.input.buffer).toBeInstanceOf(SharedArrayBuffer);
    const s2 = pool.take(4, 2);
    expect(s2.raw).not.toBe(s1.raw);
    expect(pool.bytes).toBe(2 * (4 + 8) * 4);
    pool.give(s1);
    expect(pool.take(3, 2).raw).toBe(s1.raw);
    pool.give(s2);
    const big = pool.take(10, 2);
    expect(big.output.length).toBe(20);
    expect(pool.bytes).toBe((4 + 8) * 4 + (10 + 20) * 4);
  });
});
