/**
 * `@zeroflow/amp`: mixed precision for ZeroFlow. fp16/bf16 are storage and wire formats (`Uint16Array` bit
 * patterns), compute is fp32 (DESIGN.md 4, 7). Exports the plugin (`createPlugin`, `plugin`, default),
 * DeepSpeed's loss scalers and the `amp` service. The bit-exact conversions are core's (`narrow`, `widen`, ...).
 */
import { plugin } from './plugin.js';

export { AMP_SERVICE, type AmpService, createAmpService } from './gradient-rounding.js';
export { HalfParameterAccess } from './half-storage.js';
export {
  DynamicLossScaler,
  type DynamicLossScalerOptions,
  LossScaleAtMinimumError,
  type LossScaler,
  type LossScalerState,
  type MinScalePolicy,
  StaticLossScaler,
} from './loss-scaler.js';
export {
  AMP_VERSION,
  type AmpOptions,
  type AmpPlugin,
  createLossScaler,
  createPlugin,
  type LossScaleProfile,
  plugin,
} from './plugin.js';

export default plugin;
