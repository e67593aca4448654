/**
 * DeepSpeed-compatible config: JSONC parsing, the schema DSL plugins use for their sections, core's top-level
 * schema, the batch rule, and `resolveConfig`.
 */
export { type BatchSizes, type BatchSizesInput, inferBatchSizes } from './batch.js';
export { type JsonValue, parseConfigText } from './jsonc.js';
export {
  loadConfigFile,
  loadConfigInput,
  type RequiredPlugin,
  type ResolveContext,
  type ResolvedConfig,
  requiredPluginPackages,
  resolveConfig,
} from './resolve.js';
export * from './schema.js';
export type {
  ActivationCheckpointingConfig,
  CheckpointConfig,
  CommsLoggerConfig,
  DataTypesConfig,
  ResolvedCsvMonitorConfig,
} from './sections/misc.js';
export { type OptimizerConfig, type OptimizerType, resolveOptimizerSection } from './sections/optimizer.js';
export type { Bf16Config, Fp16Config } from './sections/precision.js';
export {
  resolveSchedulerParams,
  resolveSchedulerSection,
  type SchedulerConfig,
  type SchedulerParamsOf,
  type SchedulerType,
} from './sections/scheduler.js';
export {
  type OffloadOptimizerConfig,
  type OffloadParamConfig,
  offloadOptimizerSchema,
  offloadParamSchema,
  type ZeroOptimizationConfig,
  zeroOptimizationSchema,
} from './sections/zero.js';
export { closestMatch, didYouMean, editDistance } from './suggest.js';
export {
  DEFAULT_ONLY_SECTIONS,
  IMPLEMENTED_SECTIONS,
  knownTopLevelKeys,
  nestedKeyHints,
  type PluginSection,
  TOP_LEVEL_ALIASES,
  topLevelShape,
  UNSUPPORTED_SECTIONS,
} from './top-level.js';
