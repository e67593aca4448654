import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(packageDir, 'dist', 'bin.cjs');
const dir = mkdtempSync(join(tmpdir(), 'zf-cli-'));

/** Runs the built `zeroflow` executable as a user would. */
function zeroflow(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(() => {
  // nx builds before testing; a direct `vitest run` on a fresh checkout builds here.
  if (!existsSync(bin)) execFileSync('npx', ['tsup'], { cwd: packageDir, stdio: 'ignore' });
});

describe('zeroflow config check', () => {
  const valid = file(
    'ds_config.json',
    `{
  // a DeepSpeed config, comments and trailing commas allowed
  "train_batch_size": 32,
  "train_micro_batch_size_per_gpu": 4,
  "optimizer": { "type": "AdamW", "params": { "lr": 3e-4 } },
  "zero_optimization": { "stage": 2, },
  "bf16": { "enabled": true },
}`,
  );

  it('prints the resolved config with defaults filled in', () => {
    const r = zeroflow('config', 'check', valid, '--world', '4');
    expect(r.status).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.gradient_accumulation_steps).toBe(2);
    expect(config.optimizer.params).toMatchObject({ lr: 3e-4, betas: [0.9, 0.999], eps: 1e-8 });
    expect(config.zero_optimization.reduce_bucket_size).toBe(5e8);
    expect(config.gradient_clipping).toBe(1);
    expect(r.stderr).toContain('valid for world size 4');
    expect(r.stderr).toContain('@zeroflow/zero-stage2');
  });

  it('prints one JSON object with --json', () => {
    const r = zeroflow('config', 'check', '--json', valid);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(true);
    expect(out.config.gradient_accumulation_steps).toBe(8);
    expect(out.requiredPlugins.map((p: { package: string }) => p.package)).toEqual([
      '@zeroflow/zero-stage2',
      '@zeroflow/amp',
    ]);
  });

  const invalid = file(
    'bad.json',
    JSON.stringify({
      train_batch_size: 30,
      train_micro_batch_size_per_gpu: 4,
      gradient_accumulation_steps: 2,
      zero_optimization: { stage: 4, overlap_com: true },
      optimizer: { type: 'Adam', params: { lr: -1 } },
    }),
  );

  it('lists every problem, one per line, and exits 2 without a stack trace', () => {
    const r = zeroflow('config', 'check', invalid);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`${invalid}: invalid config (4 problems):`);
    expect(lines.slice(1).map((l) => l.trim().split(' = ')[0])).toEqual([
      'optimizer.params.lr',
      'zero_optimization.overlap_com',
      'zero_optimization.stage',
      'train_batch_size',
    ]);
    expect(r.stderr).toContain('zero_optimization.overlap_com = true: unknown key (did you mean "overlap_comm"?)');
    expect(r.stderr).toContain('30 != 4 * 2 * 1 = 8');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports issues as JSON with --json', () => {
    const r = zeroflow('config', 'check', invalid, '--json');
    expect(r.status).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(out.issues).toContainEqual({
      path: 'zero_optimization.stage',
      value: 4,
      rule: 'must be an integer from 0 to 3',
    });
  });

  it('reports JSONC syntax errors with line and column', () => {
    const broken = file('broken.json', '{\n  "train_batch_size": 8,\n  "fp16": { "enabled": true\n}\n');
    const r = zeroflow('config', 'check', broken);
    expect(r.status).toBe(2);
    // The inner object closes on line 4, so the outer one is still open at the end of the file.
    expect(r.stderr).toContain(
      `${broken}:5:1 = "<end of file>": JSON syntax error: unexpected end of file, expected ',' or '}'`,
    );
  });

  it('checks the batch rule for the given world size', () => {
    const r = zeroflow('config', 'check', valid, '--world', '3');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('32 != 4 * 2 * 3 = 24');
  });

  it('reports a missing file', () => {
    const r = zeroflow('config', 'check', join(dir, 'nope.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ENOENT');
  });

  it('rejects bad command lines with usage and exit 64', () => {
    for (const args of [
      ['config', 'check'],
      ['config', 'check', valid, '--world', 'two'],
      ['config', 'check', valid, '--wrld', '2'],
      ['config', 'chek', valid],
      ['config'],
    ]) {
      const r = zeroflow(...args);
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(/^zeroflow: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(zeroflow('config', 'chek').stderr).toContain('did you mean "check"?');
  });

  it('prints help', () => {
    expect(zeroflow('--help').stdout).toContain('config check');
    const r = zeroflow('config', 'check', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--world N');
  });
});
