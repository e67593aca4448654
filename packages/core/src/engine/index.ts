export { sha256File, writeFileAtomic, writeTextAtomic } from './atomic-files.js';
export {
  CHECKPOINT_FORMAT,
  type CheckpointManifest,
  type ManifestFile,
  readManifest,
  type SaveCheckpointOptions,
} from './checkpoint.js';
export { Engine, initialize } from './engine.js';
export {
  bindParametersToBuffer,
  type FlatEntry,
  type FlatGroup,
  layoutFlatGroups,
  MAX_FLAT_ELEMENTS,
  segmentsOf,
} from './flat-params.js';
export { GradientBuckets } from './grad-buckets.js';
export { loadPluginPackage, orderAndValidatePlugins, satisfies } from './plugin-registry.js';
export { Stage0Owner } from './stage0-owner.js';
export { resolveWorld } from './world.js';
