import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fp32ToBf16, fp32ToFp16, initialize, manualSeed, readSafetensorsFile } from '@zeroflow/core';
import { beforeAll, describe, expect, it } from 'vitest';
// Independent references from the sources (not dependencies of the cli package): amp's rounding, HF loading.

import { GPT, loadHFStateDict } from '@zeroflow/models';
import type { CliIO } from '../src/command.js';
import { runCli } from '../src/main.js';

const dir = mkdtempSync(join(tmpdir(), 'zf-export-'));
const ckpt = join(dir, 'ckpt');
const config = { vocabSize: 64, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16 };
let trained: Map<string, { shape: number[]; values: Float32Array }>;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) };
  return { code: await runCli(args, io), stdout, stderr };
}

beforeAll(async () => {
  // A real checkpoint: GPT tiny trained two steps (so weights differ from any init), saved twice.
  manualSeed(3);
  const model = new GPT(config);
  const engine = await initialize({
    model,
    config: { train_batch_size: 2, optimizer: { type: 'AdamW', params: { lr: 1e-2, weight_decay: 0.1 } } },
  });
  const inputIds = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 64);
  const targets = Int32Array.from({ length: 16 }, (_, i) => (i * 7 + 1) % 64);
  for (let s = 0; s < 2; s++) {
    engine.backward(() => model.loss({ inputIds, targets, shape: [2, 8] }));
    await engine.step();
    await engine.saveCheckpoint(ckpt, { tag: `step${s + 1}` });
  }
  trained = new Map(model.namedParameters().map(([n, p]) => [n, { shape: p.shape, values: p.values() }]));
  await engine.close();
});

describe('zeroflow ckpt export', () => {
  it('fp32: every tensor with its Hugging Face name, exactly the checkpoint weights; HF loading accepts it', async () => {
    const out = join(dir, 'model.safetensors');
    const r = await cli('ckpt', 'export', ckpt, '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tag: 'step2', dtype: 'fp32', tensors: trained.size });
    const file = readSafetensorsFile(out);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.keys()].sort()).toEqual([...trained.keys()].sort());
    expect(file.tensors.has('transformer.h.1.attn.c_attn.weight')).toBe(true);
    for (const [name, t] of file.tensors) {
      expect(t.dtype).toBe('F32');
      expect(t.shape, name).toEqual(trained.get(name)?.shape);
      expect(t.data, name).toEqual(trained.get(name)?.values);
    }
    const fresh = new GPT(config);
    loadHFStateDict(fresh, file.tensors);
    for (const [name, p] of fresh.namedParameters()) expect(p.values(), name).toEqual(trained.get(name)?.values);
    fresh.dispose();
  });

  for (const [dtype, st, round] of [
    ['fp16', 'F16', fp32ToFp16],
    ['bf16', 'BF16', fp32ToBf16],
  ] as const) {
    it(`${dtype}: every element rounded to nearest even, tensor by tensor`, async () => {
      const out = join(dir, `model-${dtype}.safetensors`);
      const r = await cli('ckpt', 'export', ckpt, '--out', out, '--dtype', dtype);
      expect(r.code, r.stderr).toBe(0);
      const file = readSafetensorsFile(out);
      expect(file.tensors.size).toBe(trained.size);
      for (const [name, t] of file.tensors) {
        expect(t.dtype).toBe(st);
        const want = Uint16Array.from(trained.get(name)?.values ?? [], (x) => round(x));
        expect(t.data, name).toEqual(want);
      }
    });
  }

  it('--tag picks an older checkpoint', async () => {
    const out = join(dir, 'step1.safetensors');
    expect((await cli('ckpt', 'export', ckpt, '--tag', 'step1', '--out', out)).code).toBe(0);
    const w = readSafetensorsFile(out).tensors.get('transformer.wte.weight')?.data as Float32Array;
    expect(w).not.toEqual(trained.get('transformer.wte.weight')?.values);
  });

  it('a corrupted checkpoint file fails its checksum; bad arguments are usage errors', async () => {
    const bad = join(dir, 'bad');
    const src = join(ckpt, 'step2');
    const { cpSync } = await import('node:fs');
    cpSync(src, join(bad, 'step2'), { recursive: true });
    writeFileSync(join(bad, 'latest'), 'step2\n');
    const model = join(bad, 'step2', 'model.safetensors');
    const bytes = readFileSync(model);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(model, bytes);
    const r = await cli('ckpt', 'export', bad, '--out', join(dir, 'x.safetensors'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/fails its SHA-256 check/);
    expect((await cli('ckpt', 'export', ckpt)).code).toBe(64);
    expect((await cli('ckpt', 'export', ckpt, '--out', 'x', '--dtype', 'fp8')).stderr).toMatch(/--dtype must be/);
  });
});
