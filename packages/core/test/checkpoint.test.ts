import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError, initialize } from '../src/index.js';
import { Mlp } from './fixtures/mlp.js';

const script = join(__dirname, 'fixtures', 'resume-run.ts');
function run(args: string[]) {
  execFileSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: join(__dirname, '..'), stdio: 'pipe' });
}
type Result = { weights: number[][]; losses: number[]; lr: number[]; steps: number };
const read = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Result;

describe('checkpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zf-ckpt-'));

  it('10 steps, save, load in a fresh process, 10 more == 20 uninterrupted, bit for bit', () => {
    run(['20', join(dir, 'unused'), join(dir, 'full.json')]);
    run(['10', join(dir, 'ck'), join(dir, 'first.json'), 'save']);
    run(['10', join(dir, 'ck'), join(dir, 'second.json'), 'resume']);
    const full = read(join(dir, 'full.json'));
    const first = read(join(dir, 'first.json'));
    const second = read(join(dir, 'second.json'));
    expect([...first.losses, ...second.losses]).toEqual(full.losses);
    expect(second.weights).toEqual(full.weights);
    expect(second.lr).toEqual(full.lr);
    expect(second.steps).toBe(20);
    expect(readFileSync(join(dir, 'ck', 'latest'), 'utf8').trim()).toBe('global_step10');
    expect(readdirSync(join(dir, 'ck', 'global_step10')).filter((f) => f.startsWith('.'))).toEqual([]);
  }, 120_000);

  it('a truncated or corrupted file is a clear CheckpointError', async () => {
    const engine = await initialize({ model: new Mlp(), config: { train_micro_batch_size_per_gpu: 2 } });
    const d = join(dir, 'bad');
    await engine.saveCheckpoint(d);
    const f = join(d, 'global_step0', 'model.safetensors');
    const bytes = readFileSync(f);
    truncateSync(f, bytes.length - 10);
    await expect(engine.loadCheckpoint(d)).rejects.toThrow(/truncated/);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 0xff;
    writeFileSync(f, flipped);
    await expect(engine.loadCheckpoint(d)).rejects.toThrow(CheckpointError);
    await expect(engine.loadCheckpoint(d)).rejects.toThrow(/SHA-256/);
    writeFileSync(join(d, 'global_step0', 'manifest.json'), '{"format": 1, "tag": ');
    await expect(engine.loadCheckpoint(d)).rejects.toThrow(/manifest.json is corrupted/);
    await expect(engine.loadCheckpoint(join(dir, 'nothing'))).rejects.toThrow(/no checkpoint/);
  });
});
