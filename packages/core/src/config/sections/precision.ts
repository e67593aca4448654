/**
 * `fp16` and `bf16` (DeepSpeed's deepspeed/runtime/precision_config.py). The amp plugin may own these sections.
 */

import { s } from '../schema.js';
import type { Infer } from '../schema-base.js';

/** Schema of `fp16`. `loss_scale: 0` means dynamic loss scaling starting at 2^initial_scale_power. */
export const fp16Schema = s.object(
  {
    enabled: s.boolean({ default: false }),
    auto_cast: s.boolean({ default: false }),
    loss_scale: s.number({ min: 0, default: 0 }),
    initial_scale_power: s.integer({ default: 16 }),
    loss_scale_window: s.integer({ default: 1000 }),
    hysteresis: s.integer({ min: 1, default: 2 }),
    consecutive_hysteresis: s.boolean({ default: false }),
    min_loss_scale: s.number({ default: 1 }),
    fp16_master_weights_and_grads: s.onlyDefault(s.boolean({ default: false }), 'fp16 master weights'),
  },
  {
    refine(fp16, { issue }) {
      // Like DeepSpeed, the window and floor are checked only when dynamic scaling is actually used.
      if (fp16.enabled && fp16.loss_scale === 0) {
        if (fp16.loss_scale_window <= 0) {
          issue(
            'loss_scale_window',
            fp16.loss_scale_window,
            'must be > 0 when dynamic loss scaling is on (loss_scale 0)',
          );
        }
        if (fp16.min_loss_scale <= 0) {
          issue('min_loss_scale', fp16.min_loss_scale, 'must be > 0 when dynamic loss scaling is on (loss_scale 0)');
        }
      }
    },
  },
);

/** Schema of `bf16` (DeepSpeed also reads the old name `bfloat16`). */
export const bf16Schema = s.object({
  enabled: s.boolean({ default: false }),
  immediate_grad_update: s.boolean({ default: false }),
  check_grad_overflow: s.boolean({ default: true }),
  bf16_master_weights_and_grads: s.onlyDefault(s.boolean({ default: false }), 'bf16 master weights and grads'),
  bf16_optimizer_states: s.onlyDefault(s.boolean({ default: false }), 'bf16 optimizer states'),
});

export type Fp16Config = Infer<typeof fp16Schema>;
export type Bf16Config = Infer<typeof bf16Schema>;
