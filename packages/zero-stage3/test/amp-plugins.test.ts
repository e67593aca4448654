/**
 * Registration of amp beside stage 3: amp yields `parameter-storage` to the stage-3 plugin (which stores and
 * widens 16-bit shards itself), while two plugins that both insist on parameter storage still conflict.
 */
import { createPlugin as createAmp } from '@zeroflow/amp';
import { orderAndValidatePlugins, type ZeroFlowPlugin } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { createPlugin as createStage3 } from '../src/index.js';

const storage = (name: string, extra: Partial<ZeroFlowPlugin> = {}): ZeroFlowPlugin => ({
  name,
  version: '0.1.0',
  coreVersion: '^0.1.0',
  provides: ['parameter-storage'],
  ...extra,
});

describe('amp beside ZeRO stage 3', () => {
  it('amp yields parameter storage to stage 3: both register, amp first', () => {
    const amp = createAmp();
    expect(amp.yields).toEqual(['parameter-storage']);
    const ordered = orderAndValidatePlugins([createStage3(), amp]);
    expect(ordered.map((p) => p.name)).toEqual(['@zeroflow/amp', '@zeroflow/zero-stage3']);
  });

  it('two plugins that do not yield parameter storage still conflict, and so do two that both yield', () => {
    expect(() => orderAndValidatePlugins([createStage3(), storage('other')])).toThrow(
      /"@zeroflow\/zero-stage3" and "other" both provide parameter storage/,
    );
    const y = { yields: ['parameter-storage'] };
    expect(() => orderAndValidatePlugins([createStage3(), createAmp(), storage('other')])).toThrow(
      /both provide parameter storage/,
    );
    expect(() =>
      orderAndValidatePlugins([
        storage('a', y),
        storage('b', { ...y, provides: ['parameter-storage', 'optimizer-step'] }),
      ]),
    ).toThrow(/"a" and "b" both provide parameter storage/);
  });
});
