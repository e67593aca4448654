/**
 * The plugin interface: the only way a plugin touches the engine (DESIGN.md section 3).
 *
 * A plugin declares who it is (name, version, the core versions it works with), what it provides and needs
 * (capabilities), which config section it owns (with its schema), where it runs relative to others
 * (`enforce`, `dependencies`), and hooks for the phases of a step. Exactly one plugin provides
 * `optimizer-step`: it owns gradient reduction and the optimizer step (core's stage-0 owner when no ZeRO
 * plugin is configured). Hooks that run inside backward are synchronous (tfjs autograd cannot await);
 * async work belongs in `setup`, `beforeStep`, `afterStep` and the checkpoint hooks.
 */

import type { ResolvedConfig } from './config/index.js';
import type { Schema } from './config/schema-base.js';
import type { ParameterAccess, ParameterFactory } from './nn/index.js';
import type { Module } from './nn/module.js';
import type { Parameter } from './nn/parameter.js';
import type { FlatOptimizer, LRScheduler } from './optim/types.js';

/**
 * Well-known capabilities. Plugins may declare others (any string); these are the ones core checks.
 * - `optimizer-step`: owns gradient reduction and the optimizer step (exactly one provider).
 * - `comm`: a ProcessGroup backend (collectives between ranks).
 * - `parameter-storage`: supplies weights through the parameter hook (ZeRO-3, amp); at most one.
 * - `loss-scaling`: scales the loss and can veto a step on overflow (amp).
 */
export type Capability = 'optimizer-step' | 'comm' | 'parameter-storage' | 'loss-scaling' | (string & {});

/** Ranks and sizes of this process along each parallel axis. */
export interface WorldInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  dataParallelRank: number;
  dataParallelSize: number;
  tensorParallelSize: number;
  pipelineParallelSize: number;
}

/** A parameter with its place in the model (ZeRO and tensor parallelism key everything by name). */
export interface NamedParameter {
  name: string;
  param: Parameter;
}

/** What a step did, as reported by the `optimizer-step` owner. */
export interface StepOutcome {
  /** Global L2 norm of the (unscaled, reduced) gradients before clipping. */
  gradNorm: number;
  /** True when the optimizer step was skipped (e.g. fp16 overflow). */
  skipped: boolean;
}

/**
 * The owner of gradient reduction and the optimizer step. Receives every gradient as backward produces it,
 * and at the accumulation boundary reduces, unscales, clips and steps.
 */
export interface GradientOwner {
  /** Async, once after creation (e.g. broadcast initial parameters from rank 0). */
  init?(): Promise<void>;
  /** Synchronous, before each micro-batch forward; `boundary` is true when this micro-batch ends the window. */
  beforeBackward?(info: { boundary: boolean }): void;
  /** Synchronous, in forward: one gradient of `param` will arrive in this backward (tied weights: several). */
  onUse?(param: Parameter): void;
  /**
   * Synchronous, inside backward: accumulate (or start reducing) `grad`, already multiplied by gradScale and,
   * under mixed precision, already rounded to 16 bits. `grad` is only valid during the call (copy it).
   */
  onGrad(param: Parameter, grad: Float32Array): void;
  /** Synchronous, after the backward of one micro-batch completes. */
  afterBackward?(): void;
  /**
   * At the accumulation boundary: reduce across data-parallel ranks, divide by `unscale`, clip to
   * `clipNorm` (0 = off), step the optimizer unless `skip` says otherwise, and zero the gradients.
   */
  step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome>;
  /** Drops accumulated gradients without stepping. */
  zeroGrad(): void;
  /** Optimizer and partition state for checkpoints (this rank's share). */
  stateDict(): Promise<OwnerState>;
  loadStateDict(state: OwnerState): Promise<void>;
  /** Bytes per category held by this rank (parameters, gradients, optimizer state, buffers). */
  memoryReport?(): Record<string, number>;
  /**
   * Full fp32 values of the parameters this owner stores partitioned (ZeRO-3), by name. A collective: core
   * calls it on every rank when saving a checkpoint. Owners under mixed precision return their fp32 master
   * weights here (gathered from every rank's shard), so that checkpoints hold masters, not 16-bit values.
   */
  fullParameters?(): Promise<Record<string, Float32Array>>;
  dispose?(): void;
}

/**
 * The `amp` service (offered by `@zeroflow/amp` under the capability `amp`): the engine rounds every
 * gradient with it before the owner sees it, as DeepSpeed's fp16/bf16 backward yields 16-bit gradients.
 */
export interface MixedPrecisionService {
  readonly gradDtype: 'fp16' | 'bf16';
  roundGradInPlace(buf: Float32Array): void;
  /**
   * Called by an optimizer-step owner that holds the model's parameters as 16-bit flat buffers (the only
   * copy of the full model; fp32 master weights live in the owner's optimizer partition). The service's
   * parameter access then widens `storage.half(p)` to fp32 for one leaf at a time, just in time. Owners that
   * keep fp32 parameters do not call it. Optional: services from before this hook do not implement it.
   */
  attachParameterStorage?(storage: HalfParameterStorage): void;
}

/**
 * The 16-bit parameters an optimizer-step owner holds under mixed precision (see
 * {@link MixedPrecisionService.attachParameterStorage}).
 */
export interface HalfParameterStorage {
  /** The 16-bit format of the bit patterns. */
  readonly format: 'fp16' | 'bf16';
  /**
   * The 16-bit bit patterns of `param` (a view into the owner's flat buffer: read it, never keep it across an
   * optimizer step), or undefined when this owner does not hold `param` (a frozen parameter).
   */
  half(param: Parameter): Uint16Array | undefined;
}

/** A plugin's checkpoint share: flat named fp32 tensors plus JSON-able metadata. */
export interface OwnerState {
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
  meta: Record<string, unknown>;
}

/** Passed to `setup`: everything a plugin may read or extend, and nothing else. */
export interface PluginContext {
  readonly config: ResolvedConfig;
  readonly model: Module;
  readonly parameters: readonly NamedParameter[];
  /** Parameter names of each optimizer param group (matching `optimizer.paramGroups`), in model order. */
  readonly paramGroups: readonly { names: string[] }[];
  readonly world: WorldInfo;
  readonly optimizer: FlatOptimizer;
  /** Another plugin's service for a capability it provides (e.g. the `comm` ProcessGroup). */
  service<T>(capability: Capability): T | undefined;
  /** Offers a service under a capability this plugin declared in `provides`. */
  provideService(capability: Capability, service: unknown): void;
  /** Installs the parameter access hook (requires the `parameter-storage` capability). */
  setParameterAccess(access: ParameterAccess): void;
  /** Installs a factory used while models are constructed inside `engine.initScope` (ZeRO-3's zero.Init). */
  setParameterFactory(factory: ParameterFactory): void;
  log(message: string): void;
}

/** Information hooks receive about the current step. */
export interface StepInfo {
  globalStep: number;
  microStep: number;
  loss?: number;
}

/** Phase hooks. All optional. */
export interface PluginHooks {
  /** Sync, before each micro-batch forward. */
  beforeForward?(info: StepInfo): void;
  /** Factor multiplied into the backward cotangent (loss scaling); the owner divides it out at the step. */
  lossScale?(): number;
  /** Sync, after each micro-batch backward. */
  afterBackward?(info: StepInfo): void;
  /** Async, at the accumulation boundary before the owner steps; may return `skip: true` (overflow). */
  beforeStep?(info: StepInfo): Promise<{ skip?: boolean } | undefined> | { skip?: boolean } | undefined;
  /** Called with the gradient norm to decide whether the step must be skipped (e.g. inf/NaN). */
  checkOverflow?(gradNorm: number): boolean;
  /** Async, after the step (or the skip). */
  afterStep?(info: StepInfo & StepOutcome): Promise<void> | void;
  /** JSON-able state for checkpoints (e.g. the loss scaler). */
  stateDict?(): Record<string, unknown>;
  loadStateDict?(state: Record<string, unknown>): void;
  teardown?(): Promise<void> | void;
}

/** A ZeroFlow plugin. */
export interface ZeroFlowPlugin {
  /** Unique name, by convention the npm package name (`@zeroflow/zero-stage2`). */
  name: string;
  version: string;
  /** Semver range of `@zeroflow/core` this plugin works with, e.g. `^0.1.0`. */
  coreVersion: string;
  /** Names of plugins that must also be registered (they are set up first). */
  dependencies?: string[];
  provides?: Capability[];
  /**
   * Capabilities of `provides` this plugin gives up to another registered plugin that provides them too
   * (checked at registration, before setup): such a plugin then must not use them. `@zeroflow/amp` yields
   * `parameter-storage` to ZeRO stage 3, which stores 16-bit parameter shards and widens gathered weights
   * itself; with stages 0-2 amp serves the owner's 16-bit buffers. Two providers that both yield still
   * conflict.
   */
  yields?: Capability[];
  requires?: Capability[];
  /** The config section this plugin owns and validates (core validates the rest). */
  configSection?: { key: string; schema: Schema };
  /** `pre` plugins set up before normal ones, `post` after; otherwise registration order. */
  enforce?: 'pre' | 'post';
  /** Async setup once the model, config and optimizer exist. */
  setup?(ctx: PluginContext): Promise<void> | void;
  /** Only for the `optimizer-step` provider. */
  createGradientOwner?(ctx: PluginContext, optimizer: FlatOptimizer): GradientOwner;
  hooks?: PluginHooks;
}

/** Options for `initialize`. */
export interface InitializeOptions {
  model: Module;
  /** A DeepSpeed-style config: a path to a JSON (with comments) file, or an object. */
  config: string | Record<string, unknown>;
  /** Plugin objects to use in addition to (or instead of) those the config names. */
  plugins?: ZeroFlowPlugin[];
  /** A ready optimizer (overrides the config's `optimizer`). */
  optimizer?: FlatOptimizer;
  /** A ready scheduler, or a factory given the optimizer (overrides the config's `scheduler`). */
  lrScheduler?: LRScheduler | ((optimizer: FlatOptimizer) => LRScheduler);
  /** Ranks and sizes; defaults from the environment (RANK, WORLD_SIZE, ...), else a single process. */
  world?: Partial<WorldInfo>;
}
