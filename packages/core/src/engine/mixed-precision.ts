/**
 * What an optimizer-step owner needs to know to lay out its buffers under mixed precision (DESIGN.md 6-7):
 * the 16-bit parameter format (from the `amp` service) and the dtype gradients accumulate in
 * (`data_types.grad_accum_dtype`, DeepSpeed's key: by default the training dtype; `fp32` keeps fp32
 * gradient buffers, which then count 4 bytes per element).
 */
import { ZeroFlowError } from '../errors.js';
import type { HalfFormat } from '../numeric/half.js';
import type { MixedPrecisionService, PluginContext } from '../plugin.js';

/** The owner's buffer formats under amp. */
export interface MixedPrecisionLayout {
  /** 16-bit format of the parameters (and of parameter all-gathers on the wire). */
  format: HalfFormat;
  /** 16-bit format of gradient buffers (and gradient reductions on the wire); null: fp32 gradients. */
  gradFormat: HalfFormat | null;
  service: MixedPrecisionService;
}

/** The layout for `ctx`, or null when no `amp` service is present (fp32 training). */
export function mixedPrecisionLayout(ctx: PluginContext, owner: string): MixedPrecisionLayout | null {
  const service = ctx.service<MixedPrecisionService>('amp');
  if (!service) return null;
  if (!service.attachParameterStorage) {
    throw new ZeroFlowError(
      `${owner}: the "amp" service cannot take 16-bit parameter storage (no attachParameterStorage): update @zeroflow/amp`,
    );
  }
  const format = service.gradDtype;
  const accum = ctx.config.data_types?.grad_accum_dtype ?? null;
  if (accum !== null && accum !== 'fp32' && accum !== format) {
    throw new ZeroFlowError(
      `data_types.grad_accum_dtype is "${accum}" but training runs in ${format}: gradients are accumulated in ` +
        `the training dtype or in fp32; set it to "${format}", "fp32" or leave it out`,
    );
  }
  return { format, gradFormat: accum === 'fp32' ? null : format, service };
}
