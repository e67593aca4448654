/**
 * One 16-bit copy of the model, held by the optimizer-step owner (core's stage 0 here): amp widens it per
 * leaf for the forward pass, the fp32 masters are the optimizer's, and `Parameter.tensor` still works for
 * code outside the forward pass (an EMA plugin, `param.load`) as a snapshot written back before the next step.
 */
import { executionContext, type Parameter, roundInPlace } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { batchOf, makeRun, type Run, tf, train } from './helpers.js';

function usedWeights(run: Run, p: Parameter): Float32Array {
  return run.engine.inference(() => {
    const [w] = executionContext().access.acquire([p], run.model);
    const v = (w.dataSync() as Float32Array).slice();
    w.dispose();
    return v;
  });
}

describe('16-bit parameter storage in the owner', () => {
  it('the owner holds 2-byte parameters and gradients, fp32 masters and moments: 16Ψ; amp holds nothing', async () => {
    for (const precision of [{ bf16: { enabled: true } }, { fp16: { enabled: true } }]) {
      const run = await makeRun(precision);
      await train(run, 2);
      const psi = run.model.parameters().reduce((a, p) => a + p.size, 0);
      const m = run.engine.memoryReport();
      expect(m).toMatchObject({ parameters: 2 * psi, gradients: 2 * psi, masterWeights: 4 * psi, optimizer: 8 * psi });
      expect(m.materializedParameters).toBe(0);
      // the storage amp widens from is the owner's
      const p = run.model.parameters()[1];
      expect(run.amp!.parameters!.attached!.half(p)).toHaveLength(p.size);
      await run.engine.close();
    }
  });

  it('Parameter.tensor reads the fp32 masters; the copy is freed at the next step and tensors do not pile up', async () => {
    const run = await makeRun({ bf16: { enabled: true } });
    await train(run, 2);
    const before = tf.memory().numTensors;
    const p = run.model.parameters()[2];
    const master = p.values();
    expect(run.engine.memoryReport().materializedParameters).toBe(p.size * 4);
    // the forward pass uses the 16-bit rounding of the masters (an unchanged snapshot writes back as is)
    expect(Array.from(usedWeights(run, p))).toEqual(Array.from(roundInPlace(master.slice(), 'bf16')));
    expect(Array.from(p.values())).toEqual(Array.from(master));
    // an EMA-style reader of every parameter, then two more steps
    for (const q of run.model.parameters()) q.values();
    await train(run, 2, 2);
    expect(run.engine.memoryReport().materializedParameters).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    // reading without writing changed nothing: the masters are still exact fp32 values
    const again = run.model.parameters()[2].values();
    expect(Array.from(roundInPlace(again.slice(), 'bf16'))).not.toEqual(Array.from(again));
    await run.engine.close();
  });

  it('param.load reaches both the fp32 masters and the 16-bit copy the forward pass uses', async () => {
    const run = await makeRun({ fp16: { enabled: true } });
    await train(run, 1);
    const p = run.model.parameters()[3];
    const values = Float32Array.from({ length: p.size }, (_, i) => 0.001 * Math.sin(i) + 1e-7);
    p.load(values);
    // a forward right away (inference, evaluate) already sees them, rounded to fp16
    expect(Array.from(usedWeights(run, p))).toEqual(Array.from(roundInPlace(values.slice(), 'fp16')));
    run.engine.backward(() => run.model.loss(batchOf(0, 8)));
    expect(Array.from(p.values())).toEqual(Array.from(values));
    const full = await run.engine.gradientOwner.fullParameters!();
    expect(Array.from(full[p.name])).toEqual(Array.from(values));
    await run.engine.step();
    await run.engine.close();
  });
});
