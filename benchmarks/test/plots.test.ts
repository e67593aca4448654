import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderPlots } from '../plots.js';
import {
  type CommRow,
  type MemoryRow,
  type PeerRow,
  readJson,
  type TrainRow,
  writeJson,
  zeroFormulaBytes,
} from '../plots-data.js';
import { barChart, escapeXml, formatBytes, lineChart, logTicks, niceTicks } from '../plots-svg.js';

const meta = { machine: 'test machine', command: 'fixture' };
const tmp = () => mkdtempSync(join(tmpdir(), 'zf-plots-'));

/** Tags opened and closed in order (a well-formedness check without an XML parser). */
function checkWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) expect(stack.pop()).toBe(name);
    else stack.push(name);
  }
  expect(stack).toEqual([]);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
}

/** The y pixel of every marker circle, in document order. */
const circleYs = (svg: string) => [...svg.matchAll(/<circle cx="[^"]+" cy="([^"]+)"/g)].map((m) => Number(m[1]));

describe('SVG writer', () => {
  it('picks nice linear ticks and power-of-base log ticks covering the data', () => {
    expect(niceTicks(0, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0.3, 2.6)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3]);
    expect(logTicks(2 ** 20, 64 * 2 ** 20, 2)).toEqual([2 ** 20, 2 ** 21, 2 ** 22, 2 ** 23, 2 ** 24, 2 ** 25, 2 ** 26]);
    expect(logTicks(3, 900, 10)).toEqual([1, 10, 100, 1000]);
    expect(formatBytes(64 * 2 ** 20)).toBe('64 MiB');
    expect(escapeXml(`a<b & "c"`)).toBe('a&lt;b &amp; &quot;c&quot;');
  });

  it('draws a line chart with a title, axis labels, a legend and points placed by value', () => {
    const svg = lineChart({
      title: 'T <1>',
      x: { label: 'ranks' },
      y: { label: 'tokens/s', includeZero: true },
      series: [
        {
          name: 'stage 0',
          points: [
            [1, 100],
            [2, 200],
            [4, 300],
          ],
        },
        {
          name: 'formula',
          points: [
            [1, 50],
            [4, 50],
          ],
          dashed: true,
        },
      ],
    });
    checkWellFormed(svg);
    expect(svg).toContain('T &lt;1&gt;');
    for (const s of ['ranks', 'tokens/s', 'stage 0', 'formula']) expect(svg).toContain(`>${s}</text>`);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('stroke-dasharray');
    const ys = circleYs(svg);
    expect(ys).toHaveLength(5);
    // higher values sit higher (smaller y); equal values on one level
    expect(ys[0]).toBeGreaterThan(ys[1]);
    expect(ys[1]).toBeGreaterThan(ys[2]);
    expect(ys[3]).toBeCloseTo(ys[4], 6);
  });

  it('draws grouped bars whose heights are proportional to the values, gaps for nulls', () => {
    const svg = barChart({
      title: 'bars',
      categories: ['a', 'b'],
      series: [
        { name: 'x', values: [10, 20] },
        { name: 'y', values: [null, 40] },
      ],
      y: { label: 'v' },
    });
    checkWellFormed(svg);
    // data bars carry a tooltip <title>; legend swatches do not
    const heights = [...svg.matchAll(/<rect [^>]*height="([^"]+)"[^>]*><title>/g)].map((m) => Number(m[1]));
    expect(heights).toHaveLength(3);
    expect(heights[1] / heights[0]).toBeCloseTo(2, 1);
    expect(heights[2] / heights[0]).toBeCloseTo(4, 1);
    expect(() =>
      barChart({ title: 'bad', categories: ['a'], series: [{ name: 'x', values: [1, 2] }], y: { label: '' } }),
    ).toThrow(/2 values for 1 categories/);
  });
});

describe('results JSON and the ZeRO formula', () => {
  it('round-trips rows with their context; a missing file reads as null', () => {
    const dir = tmp();
    writeJson('comm', [{ backend: 'shm', ranks: 2, op: 'allReduce', bytes: 1024, busGBs: 1.5 }], meta, dir);
    const back = readJson<CommRow>('comm', dir)!;
    expect(back.rows[0].busGBs).toBe(1.5);
    expect(back.machine).toBe('test machine');
    expect(readJson('nothing', dir)).toBeNull();
  });

  it('matches DESIGN.md section 6 and the PyTorch peer (fp32: zero1 = 8P + 8P/W)', () => {
    const P = 1000;
    expect(zeroFormulaBytes(0, P, 4)).toBe(16 * P);
    expect(zeroFormulaBytes(1, P, 4)).toBe(8 * P + (8 * P) / 4);
    expect(zeroFormulaBytes(2, P, 4)).toBe(4 * P + (12 * P) / 4);
    expect(zeroFormulaBytes(3, P, 4)).toBe((16 * P) / 4);
    expect(zeroFormulaBytes(1, P, 4, 'mixed')).toBe(4 * P + (12 * P) / 4);
    expect(zeroFormulaBytes(2, P, 4, 'mixed')).toBe(2 * P + (14 * P) / 4);
    expect(() => zeroFormulaBytes(4, P, 2)).toThrow(/stage 4/);
  });
});

describe('plots.ts', () => {
  it('writes every chart from fixture results', () => {
    const results = tmp();
    const out = join(tmp(), 'plots');
    const comm: CommRow[] = [];
    for (const backend of ['shm', 'tcp'])
      for (const op of ['allReduce', 'allGather'])
        for (const mb of [1, 16, 64])
          comm.push({
            backend,
            ranks: 2,
            op,
            bytes: mb * 2 ** 20,
            busGBs: (backend === 'shm' ? 2 : 0.6) * Math.log2(mb + 1),
          });
    writeJson('comm', comm, meta, results);
    const train: TrainRow[] = [
      { backend: 'none', ranks: 1, tokensPerSec: 3000, preset: 'tiny' },
      { backend: 'shm', ranks: 2, tokensPerSec: 5000, preset: 'tiny' },
      { backend: 'shm', ranks: 2, stage: 2, tokensPerSec: 4600 },
      { backend: 'none', ranks: 1, stage: 2, tokensPerSec: 2900 },
    ];
    writeJson('dp-train', train, meta, results);
    const memory: MemoryRow[] = [0, 1, 2].map((stage) => ({
      stage,
      ranks: 2,
      params: 1e6,
      bytesPerRank: zeroFormulaBytes(stage, 1e6, 2) * 1.05,
    }));
    writeJson('memory', memory, meta, results);
    const peer: PeerRow[] = [
      { preset: 'tiny', mode: 'single', worldSize: 1, tokensPerSec: 3600 },
      { preset: 'tiny', mode: 'ddp', worldSize: 2, tokensPerSec: 5200 },
    ];
    writeJson('peer', peer, meta, results);

    const r = renderPlots(results, out);
    expect(r.skipped).toEqual([]);
    const names = r.written.map((p) => p.slice(out.length + 1)).sort();
    expect(names).toEqual([
      'comm-allGather.svg',
      'comm-allReduce.svg',
      'memory.svg',
      'train-scaling.svg',
      'vs-pytorch.svg',
    ]);
    for (const p of r.written) checkWellFormed(readFileSync(p, 'utf8'));
    const scaling = readFileSync(join(out, 'train-scaling.svg'), 'utf8');
    expect(scaling).toContain('>tiny, stage 0, shm</text>');
    expect(scaling).toContain('>example, stage 2, shm</text>');
    const vs = readFileSync(join(out, 'vs-pytorch.svg'), 'utf8');
    // category labels are split into one line per comma-separated part
    expect(vs).toContain('>1 rank</text>');
    expect(vs).toContain('>2 ranks</text>');
    expect(vs).toContain('PyTorch, tiny, 2 ranks: 5.2k');
    expect(readFileSync(join(out, 'memory.svg'), 'utf8')).toContain('formula, stage 1, N=2: 11.4 MiB');
  });

  it('skips a chart whose data is missing and says which file it needs', () => {
    const results = tmp();
    const out = join(tmp(), 'plots');
    writeJson('comm', [{ backend: 'tcp', ranks: 2, op: 'broadcast', bytes: 2 ** 20, busGBs: 0.5 }], meta, results);
    const r = renderPlots(results, out);
    expect(r.written.map((p) => p.slice(out.length + 1))).toEqual(['comm-broadcast.svg']);
    expect(r.skipped.map((s) => s.plot)).toEqual(['train-scaling.svg', 'memory.svg', 'vs-pytorch.svg']);
    expect(r.skipped[2].reason).toMatch(/peer\.json.*python3-torch/);
    const none = renderPlots(tmp(), join(tmp(), 'none'));
    expect(none.written).toEqual([]);
    expect(existsSync(join(out, '..', 'none'))).toBe(false);
  });
});
