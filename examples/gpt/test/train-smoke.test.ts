import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
// async: a blocking child would starve vitest's worker RPC for the whole run
async function train(args: string[]): Promise<{ result: Record<string, number>; out: string }> {
  const { stdout: out } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'train.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, out).toBeDefined();
  return { result: JSON.parse(line!.slice(7)), out };
}

describe('the main example (smoke)', () => {
  it('trains a few steps, checkpoints, resumes and samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-gpt-'));
    const first = await train(['--steps', '4', '--eval-every', '4', '--save-every', '2', '--out', dir]);
    expect(first.result.steps).toBe(4);
    expect(first.result.valLoss).toBeLessThan(first.result.valLossBefore);
    expect(readFileSync(join(dir, 'latest'), 'utf8').trim()).toBe('global_step4');
    expect(first.out).toMatch(/sample: The jury said/);
    const second = await train(['--steps', '6', '--eval-every', '6', '--save-every', '6', '--out', dir, '--resume']);
    expect(second.out).toMatch(/resumed from .* at step 4/);
    expect(second.result.steps).toBe(6);
    expect(existsSync(join(dir, 'global_step6', 'manifest.json'))).toBe(true);
  }, 240_000);
});
