/**
 * Single-process training throughput of the GPT models (fp32) on the active tfjs backend: `zeroflow-cpu`
 * (native kernels, @zeroflow/backend-native) when built, else tfjs's `cpu`; the report names it. For each preset, alternating repeats of:
 *  - baseline: forward + backward only (core's backwardWithHooks, gradients dropped);
 *  - engine:   a full ZeroFlow training step (forward, backward, gradient accumulation, AdamW step).
 * Prints tokens/s (median and min-max over repeats) and the engine/baseline ratio. Then, where
 * /usr/bin/python3 has torch, the PyTorch peer (../shared/peers/gpt_peer.py --mode single) trains the same
 * presets right after, fp32 and bf16 autocast, and the ratio ZeroFlow / PyTorch is reported. Writes the
 * `train-gpt` section of RESULTS.md. Usage: node --import tsx train-gpt.ts [--quick] (quick: no `peer-small`)
 */
import { spawnSync } from 'node:child_process';
import { setMatMulPrecision } from '@zeroflow/backend-native';
import { backwardWithHooks, initialize, manualSeed, tf } from '@zeroflow/core';
import { GPT, type GPTConfig } from '@zeroflow/models';
import { DEFAULT_PEER_DIR, detectTorch, parsePeerOutput, peerArgs } from './peer.js';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';
import { syntheticBatch } from './synthetic-batch.js';

const quick = process.argv.includes('--quick');
const PRESETS: Record<string, GPTConfig & { micro: number; blockSize: number }> = {
  // the main example's model (examples/gpt/model.json)
  example: { vocabSize: 2048, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, micro: 8 },
  // the PyTorch peer's `tiny` preset (../shared/peers/gpt_peer.py): 4.24 M parameters, micro-batch 8
  'peer-tiny': { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256, micro: 8 },
  // its `small` preset: 91.4 M parameters
  ...(quick ? {} : { 'peer-small': { vocabSize: 8192, blockSize: 128, nLayer: 12, nHead: 12, nEmbd: 768, micro: 8 } }),
};
const repeats = quick ? 2 : 3;
const stepsFor = (name: string) =>
  name.startsWith('peer-') ? (quick || name === 'peer-small' ? 1 : 4) : quick ? 4 : 8;

const rows: string[] = [];
const jsonRows: {
  preset: string;
  params: number;
  tokensPerSecBaseline: number;
  tokensPerSecEngine: number;
  /** The full step with the opt-in bf16 matmul on AMX (null where AMX is unavailable). */
  tokensPerSecEngineBf16: number | null;
}[] = [];
// The opt-in bf16 compute of matmuls (ZEROFLOW_MATMUL_PRECISION=bf16), measured after the fp32 runs of each
// preset to hold against PyTorch's bf16 autocast; null where AMX is unavailable.
const amxBf16 = setMatMulPrecision('bf16') === 'bf16';
setMatMulPrecision('fp32');
for (const [name, p] of Object.entries(PRESETS)) {
  manualSeed(1);
  const model = new GPT(p);
  const engine = await initialize({
    model,
    config: {
      train_micro_batch_size_per_gpu: p.micro,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
    },
  });
  const tokens = p.micro * p.blockSize;
  const steps = stepsFor(name);
  // warm-up (first-call kernel setup)
  engine.backward(() => model.loss(syntheticBatch(p.micro, p.blockSize, p.vocabSize, 0)));
  await engine.step();
  const base: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let t = performance.now();
    for (let s = 0; s < steps; s++)
      backwardWithHooks(
        () => model.loss(syntheticBatch(p.micro, p.blockSize, p.vocabSize, s)),
        () => {},
      );
    base.push((steps * tokens * 1000) / (performance.now() - t));
    t = performance.now();
    for (let s = 0; s < steps; s++) {
      engine.backward(() => model.loss(syntheticBatch(p.micro, p.blockSize, p.vocabSize, s)));
      await engine.step();
    }
    full.push((steps * tokens * 1000) / (performance.now() - t));
  }
  const bf16: number[] = [];
  if (amxBf16) {
    setMatMulPrecision('bf16');
    engine.backward(() => model.loss(syntheticBatch(p.micro, p.blockSize, p.vocabSize, 0))); // warm-up (AMX tiles)
    await engine.step();
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      for (let s = 0; s < steps; s++) {
        engine.backward(() => model.loss(syntheticBatch(p.micro, p.blockSize, p.vocabSize, s)));
        await engine.step();
      }
      bf16.push((steps * tokens * 1000) / (performance.now() - t));
    }
    setMatMulPrecision('fp32');
  }
  const b = stats(base);
  const f = stats(full);
  const line = `| ${name} | ${(model.numParameters() / 1e6).toFixed(2)} M | ${p.micro}x${p.blockSize} | ${b.median.toFixed(0)} (${b.min.toFixed(0)}-${b.max.toFixed(0)}) | ${f.median.toFixed(0)} (${f.min.toFixed(0)}-${f.max.toFixed(0)}) | ${(f.median / b.median).toFixed(3)} |`;
  console.log(line);
  rows.push(line);
  jsonRows.push({
    preset: name,
    params: model.numParameters(),
    tokensPerSecBaseline: b.median,
    tokensPerSecEngine: f.median,
    tokensPerSecEngineBf16: bf16.length ? stats(bf16).median : null,
  });
  await engine.close();
  model.dispose();
}

/** The peer's single-process tokens/s for each `peer-*` preset, fp32 and bf16 autocast; null without torch. */
function runPeer(): { rows: string[]; commands: string[]; version: string } | null {
  const python = '/usr/bin/python3';
  const torch = detectTorch(python);
  if (!torch.ok) {
    console.error(`train-gpt: PyTorch peer skipped (${torch.reason})`);
    return null;
  }
  const rows: string[] = [];
  const commands: string[] = [];
  for (const row of jsonRows.filter((r) => r.preset.startsWith('peer-'))) {
    const preset = row.preset.slice('peer-'.length);
    const perDtype: Record<string, number> = {};
    for (const dtype of ['fp32', 'bf16']) {
      const args = [
        ...peerArgs(`${DEFAULT_PEER_DIR}/gpt_peer.py`, {
          mode: 'single',
          worldSize: 1,
          preset,
          steps: preset === 'small' ? 6 : 12,
        }),
        '--dtype',
        dtype,
      ];
      commands.push(`${python} ${args.join(' ').replace(DEFAULT_PEER_DIR, '../shared/peers')}`);
      console.error(`train-gpt: PyTorch peer ${preset} ${dtype}`);
      const r = spawnSync(python, args, { encoding: 'utf8', cwd: DEFAULT_PEER_DIR, maxBuffer: 64 << 20 });
      const rec = parsePeerOutput(r.stdout);
      if (rec.status !== 'ok') throw new Error(`gpt_peer ${preset} ${dtype} failed: ${r.stderr.slice(-1500)}`);
      perDtype[dtype] = Number(rec.tokens_per_s);
    }
    const zfBf16 = row.tokensPerSecEngineBf16;
    const bf16Cells = zfBf16 ? `${zfBf16.toFixed(0)} | ${(zfBf16 / perDtype.bf16).toFixed(2)}` : '- | -';
    const line = `| ${row.preset} | ${row.tokensPerSecEngine.toFixed(0)} | ${perDtype.fp32.toFixed(0)} | ${(row.tokensPerSecEngine / perDtype.fp32).toFixed(2)} | ${perDtype.bf16.toFixed(0)} | ${bf16Cells} |`;
    console.log(line);
    rows.push(line);
  }
  return { rows, commands, version: torch.version };
}
const peer = runPeer();
const peerText = peer
  ? `### Against the PyTorch peer, run right after in this benchmark (torch ${peer.version})

| preset | ZeroFlow full step, tokens/s | PyTorch fp32, tokens/s | ZeroFlow / PyTorch fp32 | PyTorch bf16 autocast (AMX), tokens/s | ZeroFlow with bf16 matmul (AMX, opt-in), tokens/s | ZeroFlow bf16 matmul / PyTorch bf16 |
|---|---|---|---|---|---|---|
${peer.rows.join('\n')}

ZeroFlow's bf16 column is the same engine step with \`ZEROFLOW_MATMUL_PRECISION=bf16\` (matmul inputs rounded
to bf16, fp32 accumulation on AMX, forward and backward; everything else fp32), measured after the fp32 runs.
Peer commands: ${peer.commands.map((c) => `\`${c}\``).join(', ')}. One peer run each (its own median over
measured steps); the host is shared, so read ratios within the peer's measured 5-25% run-to-run spread.`
  : 'The PyTorch peer was not run (no python3-torch: `node --import tsx peer.ts --install-peer` as root installs it).';

writeJson('train-gpt', jsonRows, {
  machine: machineLine(),
  command: `pnpm --filter @zeroflow/benchmarks bench${quick ? ' -- --quick' : ''}`,
});
writeSection(
  'train-gpt',
  `## Single-process training throughput (fp32)

Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. tfjs backend: \`${tf.getBackend()}\`${tf.getBackend() === 'zeroflow-cpu' ? ' (native matmul, element-wise, unary math, reductions, softmax, transpose, gather/concat and optimizer kernels)' : ' (JS kernels: native ones not built)'}.
Command: \`pnpm --filter @zeroflow/benchmarks bench${quick ? ' -- --quick' : ''}\` (${repeats} alternating repeats; median (min-max)).

| preset | params | micro-batch x seq | forward+backward only, tokens/s | full ZeroFlow step, tokens/s | engine / baseline |
|---|---|---|---|---|---|
${rows.join('\n')}

The baseline is the same model's forward and backward with gradients dropped, measured in the same run; the
ratio shows what the engine adds (gradient accumulation into flat buffers, AdamW, bookkeeping).

${peerText}

With the native math kernels (issue 6) matmul dominates the step's kernel time
(see the \`kernels\` section); \`ZEROFLOW_NATIVE_MATH=0\` gives the state before them for an A/B run. Before the
native backend, the \`example\` preset trained at 220-300 tokens/s in the main job (tfjs's JS matmul, 0.6-0.8
GFLOP/s).`,
);
