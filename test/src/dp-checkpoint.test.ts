import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const script = join(__dirname, 'fixtures', 'dp-train.ts');
type Out = { losses: number[]; weights: number[][] | null };

async function run(n: number, steps: number, env: Record<string, string>): Promise<Out> {
  const dir = mkdtempSync(join(tmpdir(), 'zf-dpck-'));
  const exits = await runRanks(n, script, () => [String(steps), dir], { ZEROFLOW_COMM: 'tcp', ...env });
  for (const e of exits) expect(e.code, `rank ${e.rank}:\n${e.output}`).toBe(0);
  const outs = exits.map((e) => JSON.parse(readFileSync(join(dir, `rank${e.rank}.json`), 'utf8')) as Out);
  // the step loss of the job: the mean of the ranks' losses (equal micro-batches)
  const losses = outs[0].losses.map((_, i) => outs.reduce((a, o) => a + o.losses[i], 0) / n);
  return { losses, weights: outs[0].weights };
}

describe('multi-rank checkpoints (stage 0)', () => {
  it('2 ranks: save after 3 steps, resume in fresh processes for 3 more == 6 uninterrupted, bit for bit; loads at 1 rank too', async () => {
    const ck = mkdtempSync(join(tmpdir(), 'zf-dpck-save-'));
    const full = await run(2, 6, {});
    await run(2, 3, { ZF_SAVE_DIR: ck });
    const tag = readFileSync(join(ck, 'latest'), 'utf8').trim();
    expect(tag).toBe('global_step3');
    // rank 0 wrote the model, the (replicated) optimizer state and the manifest; no part files are left
    expect(readdirSync(join(ck, tag)).sort()).toEqual([
      'manifest.json',
      'model.safetensors',
      'owner_rank0.safetensors',
    ]);
    const resumed = await run(2, 6, { ZF_RESUME_DIR: ck });
    expect(resumed.weights).toEqual(full.weights);
    expect(resumed.losses).toEqual(full.losses.slice(3));
    // stage-0 state is replicated, so one process can continue the same job (same global batch)
    const single = await run(1, 4, { ZF_RESUME_DIR: ck });
    expect(single.losses).toHaveLength(1);
    expect(Math.abs(single.losses[0] - full.losses[3]) / full.losses[3]).toBeLessThan(1e-5);
    expect(existsSync(join(ck, tag, 'manifest.json'))).toBe(true);
  }, 180_000);
});
