import { type CommsReport, LoggedProcessGroup } from '../comm/comms-logger.js';
import type { ProcessGroup } from '../comm/types.js';
import { loadConfigInput, type ResolvedConfig, requiredPluginPackages, resolveConfig } from '../config/index.js';
import {
  createDistributedLoader,
  type DataLoader,
  type DistributedLoaderOptions,
  type IndexedDataset,
} from '../data/index.js';
import { ZeroFlowError } from '../errors.js';
import { backwardWithHooks, materializedAccess, type ParameterAccess, withExecutionContext } from '../nn/context.js';
import { type ParameterFactory, withParameterFactory } from '../nn/init-scope.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';
import { Generator } from '../nn/rng.js';
import { buildParamGroups, createOptimizer, createScheduler } from '../optim/index.js';
import type { FlatOptimizer, LRScheduler } from '../optim/types.js';
import type {
  Capability,
  GradientOwner,
  InitializeOptions,
  MixedPrecisionService,
  NamedParameter,
  PluginContext,
  PluginHooks,
  StepOutcome,
  WorldInfo,
  ZeroFlowPlugin,
} from '../plugin.js';
import { tf } from '../tf.js';
import { loadCheckpoint, type SaveCheckpointOptions, saveCheckpoint } from './checkpoint.js';
import { EngineMonitor } from './engine-monitor.js';
import { loadCommPlugin, loadNativeBackend, loadPluginPackage, orderAndValidatePlugins } from './plugin-registry.js';
import { stage0Plugin } from './stage0-owner.js';
import { resolveWorld } from './world.js';

/** What a backend may offer to lend a tensor's storage for a synchronous read without marking it read out. */
const BORROW = Symbol.for('zeroflow.borrowValues');

/**
 * A gradient's float32 values for the owner's synchronous `onGrad`: the backend's storage itself where it can
 * lend it (zeroflow-cpu: its buffer pool then keeps recycling the buffer; `dataSync` would retire it, a fresh
 * allocation per gradient per step), else `dataSync()`.
 */
function borrowValues(t: tf.Tensor): Float32Array {
  const backend = tf.engine().backend as unknown as Record<
    symbol,
    ((dataId: object) => Float32Array | undefined) | undefined
  >;
  return backend[BORROW]?.(t.dataId) ?? (t.dataSync() as Float32Array);
}

/**
 * The training engine returned by `initialize`: forward+backward with gradient accumulation, the step at the
 * accumulation boundary (clip, optimizer, scheduler), counters, evaluation, checkpoints and monitoring.
 * Everything parallel is done by plugins through the plugin interface.
 */
export class Engine {
  /** Completed optimizer steps (skipped ones included, as DeepSpeed counts). */
  globalSteps = 0;
  /** Completed micro-batches (backward calls). */
  microSteps = 0;
  /** Optimizer steps skipped (fp16 overflow). */
  skippedSteps = 0;
  /** Samples seen by all data-parallel ranks together. */
  globalSamples = 0;
  /** Drives dropout masks; part of checkpoints. */
  readonly rng: Generator;
  private access: ParameterAccess = materializedAccess;
  private factory: ParameterFactory | null = null;
  private readonly services = new Map<Capability, unknown>();
  private owner!: GradientOwner;
  private readonly hooks: { name: string; hooks: PluginHooks }[] = [];
  private lossSinceBoundary = 0;
  private gradScratch = new Float32Array(0);
  private readonly monitor: EngineMonitor;
  private commsLogger: LoggedProcessGroup | null = null;

  private constructor(
    readonly model: Module,
    readonly config: ResolvedConfig,
    readonly world: WorldInfo,
    readonly optimizer: FlatOptimizer,
    readonly lrScheduler: LRScheduler | null,
    readonly plugins: readonly ZeroFlowPlugin[],
    readonly parameters: readonly NamedParameter[],
    /** Parameter names of each optimizer param group, in model order. */
    readonly paramGroups: readonly { names: string[] }[],
  ) {
    this.rng = new Generator((config.seed ?? 42) + world.rank);
    this.monitor = new EngineMonitor(config, world);
  }

  /** Micro-batches per optimizer step. */
  get gradientAccumulationSteps(): number {
    return this.config.gradient_accumulation_steps;
  }

  /** Micro-batch size of one rank. */
  get microBatchSize(): number {
    return this.config.train_micro_batch_size_per_gpu;
  }

  /** The engine's view of the model; constructing a model inside applies plugins' parameter factories. */
  initScope<T>(build: () => T): T {
    return this.factory ? withParameterFactory(this.factory, build) : build();
  }

  /** Sets up everything `initialize` documents. */
  static async create(opts: InitializeOptions): Promise<Engine> {
    const world = resolveWorld(opts.world);
    // Before any flat buffer is bound, so that parameters live on the native backend from the start.
    await loadNativeBackend();
    const raw = loadConfigInput(opts.config);
    const plugins = [...(opts.plugins ?? [])];
    for (const need of requiredPluginPackages(raw)) {
      if (!plugins.some((p) => p.name === need.package))
        plugins.push(await loadPluginPackage(need.package, need.reason));
    }
    if (world.worldSize > 1 && !plugins.some((p) => p.provides?.includes('comm')))
      plugins.push(await loadCommPlugin(world));
    const named = opts.model.namedParameters().map(([name, param]) => ({ name, param }));
    if (!plugins.some((p) => p.provides?.includes('optimizer-step'))) plugins.push(stage0Plugin());
    const ordered = orderAndValidatePlugins(plugins);
    const pluginSections = ordered.flatMap((p) => (p.configSection ? [{ ...p.configSection, owner: p.name }] : []));
    const config = resolveConfig(raw, {
      worldSize: world.worldSize,
      dataParallelSize: world.dataParallelSize,
      pluginSections,
    });

    const optimizer = opts.optimizer ?? makeOptimizer(config, named);
    const scheduler =
      typeof opts.lrScheduler === 'function'
        ? opts.lrScheduler(optimizer)
        : (opts.lrScheduler ??
          (config.scheduler ? createScheduler(config.scheduler.type, config.scheduler.params ?? {}, optimizer) : null));
    const engine = new Engine(
      opts.model,
      config,
      world,
      optimizer,
      scheduler,
      ordered,
      named,
      groupsFor(named, config, optimizer),
    );
    // DeepSpeed enables activation checkpointing from model code; a config that has the section asks for it.
    const ckptModel = opts.model as Module & { setActivationCheckpointing?: (on: boolean) => unknown };
    if (raw.activation_checkpointing !== undefined && ckptModel.setActivationCheckpointing)
      ckptModel.setActivationCheckpointing(true);
    const owner = ordered.find((p) => p.provides?.includes('optimizer-step'))!;
    for (const p of ordered) {
      await p.setup?.(engine.contextFor(p));
      if (p.hooks) engine.hooks.push({ name: p.name, hooks: p.hooks });
    }
    // Wrapped before any owner exists, so every collective it issues is counted.
    const comm = engine.services.get('comm') as ProcessGroup | undefined;
    if (config.comms_logger.enabled && comm) {
      engine.commsLogger = new LoggedProcessGroup(comm, { ...config.comms_logger, rank: world.rank });
      engine.services.set('comm', engine.commsLogger);
    }
    // The owner is created after every setup, so that the services it needs (comm, amp) exist whatever the order.
    if (!owner.createGradientOwner) {
      throw new ZeroFlowError(`plugin "${owner.name}" provides optimizer-step but has no createGradientOwner`);
    }
    engine.owner = owner.createGradientOwner(engine.contextFor(owner), optimizer);
    await engine.owner.init?.();
    engine.commsLogger?.logger.stepSummary(); // setup's broadcasts: in the totals, not in step 1
    return engine;
  }

  private contextFor(plugin: ZeroFlowPlugin): PluginContext {
    const declared = new Set(plugin.provides ?? []);
    const need = (cap: Capability, what: string) => {
      if (!declared.has(cap))
        throw new ZeroFlowError(`plugin "${plugin.name}" must declare provides: ['${cap}'] to ${what}`);
    };
    return {
      config: this.config,
      model: this.model,
      parameters: this.parameters,
      paramGroups: this.paramGroups,
      world: this.world,
      optimizer: this.optimizer,
      service: <T>(cap: Capability) => this.services.get(cap) as T | undefined,
      provideService: (cap, service) => {
        need(cap, `provide the "${cap}" service`);
        this.services.set(cap, service);
      },
      setParameterAccess: (access) => {
        need('parameter-storage', 'install a parameter access hook');
        this.access = access;
      },
      setParameterFactory: (factory) => {
        need('parameter-storage', 'install a parameter factory');
        this.factory = factory;
      },
      log: (m) => this.monitor.log(`[${plugin.name}] ${m}`),
    };
  }

  private lossScale(): number {
    let s = 1;
    for (const h of this.hooks) s *= h.hooks.lossScale?.() ?? 1;
    return s;
  }

  /**
   * Runs forward (`lossFn`) and backward for one micro-batch; gradients are scaled by 1/GAS (and the loss
   * scale) and accumulated by the optimizer-step owner as backward produces them. Returns the loss value.
   */
  backward(lossFn: () => tf.Scalar): number {
    this.model.train();
    const info = { globalStep: this.globalSteps, microStep: this.microSteps };
    for (const h of this.hooks) h.hooks.beforeForward?.(info);
    const gradScale = this.lossScale() / this.gradientAccumulationSteps;
    this.owner.beforeBackward?.({ boundary: (this.microSteps + 1) % this.gradientAccumulationSteps === 0 });
    const owner = this.owner;
    const onUse = owner.onUse ? (p: Parameter) => owner.onUse!(p) : undefined;
    const amp = this.services.get('amp') as MixedPrecisionService | undefined;
    const onGrad = (p: Parameter, grad: tf.Tensor) => {
      const g = borrowValues(grad);
      if (!amp) return owner.onGrad(p, g);
      // round a copy: tfjs owns g
      if (this.gradScratch.length < g.length) this.gradScratch = new Float32Array(g.length);
      const r = this.gradScratch.subarray(0, g.length);
      r.set(g);
      amp.roundGradInPlace(r);
      owner.onGrad(p, r);
    };
    const { loss } = this.monitor.time('forward_backward', () =>
      backwardWithHooks(lossFn, onGrad, { gradScale, access: this.access, rng: this.rng, onUse }),
    );
    this.owner.afterBackward?.();
    for (const h of this.hooks) h.hooks.afterBackward?.({ ...info, loss });
    this.microSteps++;
    this.globalSamples += this.microBatchSize * this.world.dataParallelSize;
    this.lossSinceBoundary += loss;
    return loss;
  }

  /** True when the last `backward` completed an accumulation window (the next `step` will update). */
  isGradientAccumulationBoundary(): boolean {
    return this.microSteps > 0 && this.microSteps % this.gradientAccumulationSteps === 0;
  }

  /**
   * Call after every `backward`. At the accumulation boundary: reduces gradients, clips them to
   * `gradient_clipping`, steps the optimizer and the scheduler (unless a plugin reports an overflow),
   * zeroes gradients. Elsewhere it does nothing and returns null.
   */
  async step(): Promise<(StepOutcome & { loss: number }) | null> {
    if (!this.isGradientAccumulationBoundary()) return null;
    const info = { globalStep: this.globalSteps, microStep: this.microSteps };
    let skipRequested = false;
    for (const h of this.hooks) if ((await h.hooks.beforeStep?.(info))?.skip) skipRequested = true;
    const outcome = await this.monitor.timeAsync('step', () =>
      this.owner.step({
        unscale: this.lossScale(),
        clipNorm: this.config.gradient_clipping,
        skip: (norm) => skipRequested || this.hooks.some((h) => h.hooks.checkOverflow?.(norm) ?? false),
      }),
    );
    if (outcome.skipped) this.skippedSteps++;
    else this.lrScheduler?.step();
    this.globalSteps++;
    const loss = this.lossSinceBoundary / this.gradientAccumulationSteps;
    this.lossSinceBoundary = 0;
    for (const h of this.hooks) await h.hooks.afterStep?.({ ...info, globalStep: this.globalSteps, ...outcome, loss });
    this.monitor.afterStep(this, { ...outcome, loss });
    this.commsLogger?.logger.afterStep(this.globalSteps, this.config.steps_per_print);
    return { ...outcome, loss };
  }

  /**
   * This rank's micro-batches of `dataset` (DeepSpeed's `deepspeed_io`): a DistributedSampler over the
   * data-parallel group seeded by `config.seed`, `dataloader_drop_last` applied to the last batch.
   * Save `loader.state()` with checkpoints (client state) and `restore` it to resume mid-epoch.
   */
  dataLoader<T, B = T[]>(
    dataset: IndexedDataset<T> | readonly T[],
    opts: DistributedLoaderOptions<T, B> = {},
  ): DataLoader<T, B> {
    return createDistributedLoader(this, dataset, opts);
  }

  /** Current learning rate of each param group. */
  getLr(): number[] {
    return this.lrScheduler ? this.lrScheduler.getLr() : this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** Runs `fn` in eval mode without gradients (dropout off) and returns its scalar value. */
  evaluate(fn: () => tf.Scalar): number {
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      return withExecutionContext({ access: this.access, capture: null, rng: this.rng }, () =>
        tf.tidy(() => fn().dataSync()[0]),
      );
    } finally {
      this.model.train(wasTraining);
    }
  }

  /** Runs `fn` with this engine's parameter access in eval mode, for generation and other inference. */
  inference<T>(fn: () => T): T {
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      return withExecutionContext({ access: this.access, capture: null, rng: this.rng }, fn);
    } finally {
      this.model.train(wasTraining);
    }
  }

  /** Bytes held by this rank per category. */
  memoryReport(): Record<string, number> {
    return this.owner.memoryReport?.() ?? {};
  }

  /** @internal used by checkpointing */
  get gradientOwner(): GradientOwner {
    return this.owner;
  }

  /** The `comm` ProcessGroup of a multi-rank job (null in a single process). */
  get comm(): ProcessGroup | null {
    return (this.services.get('comm') as ProcessGroup | undefined) ?? null;
  }

  /** What the comms logger counted since `initialize` (`comms_logger.enabled`; null otherwise or in one process). */
  commsReport(): CommsReport | null {
    return this.commsLogger?.logger.totals() ?? null;
  }

  /** @internal plugin hooks, for checkpointing */
  get pluginHooks(): readonly { name: string; hooks: PluginHooks }[] {
    return this.hooks;
  }

  /** Saves a checkpoint (DESIGN.md section 8) under `<dir>/<tag>`; see `saveCheckpoint`. Returns the tag. */
  saveCheckpoint(dir: string, opts: SaveCheckpointOptions = {}): Promise<string> {
    return saveCheckpoint(this, dir, opts);
  }

  /** Loads the latest (or `tag`) checkpoint from `dir`; returns the client state saved with it. */
  loadCheckpoint(dir: string, opts: { tag?: string; loadOptimizerStates?: boolean } = {}): Promise<unknown> {
    return loadCheckpoint(this, dir, opts);
  }

  /** Flushes monitors and lets plugins release what they hold. */
  async close(): Promise<void> {
    for (const h of this.hooks) await h.hooks.teardown?.();
    this.owner.dispose?.();
    this.monitor.close();
  }
}

function groupsFor(
  named: NamedParameter[],
  config: ResolvedConfig,
  userOptimizer?: FlatOptimizer,
): { names: string[] }[] {
  const trainable = named.filter((p) => p.param.requiresGrad);
  const groups = buildParamGroups(
    trainable.map((p) => ({ name: p.name, shape: p.param.shape })),
    { weightDecay: Number(config.optimizer?.params?.weight_decay ?? 0) },
  );
  if (userOptimizer && userOptimizer.paramGroups.length === 1) return [{ names: trainable.map((p) => p.name) }];
  if (userOptimizer && userOptimizer.paramGroups.length !== groups.length) {
    throw new ZeroFlowError(
      `the optimizer passed to initialize has ${userOptimizer.paramGroups.length} param groups; ZeroFlow lays out 1 (all parameters) or 2 (decayed, then not decayed: buildParamGroups)`,
    );
  }
  return groups;
}

function makeOptimizer(config: ResolvedConfig, named: NamedParameter[]): FlatOptimizer {
  const spec = config.optimizer ?? { type: 'AdamW', params: {} };
  const params = (spec.params ?? {}) as Record<string, unknown>;
  const groups = groupsFor(named, config);
  return createOptimizer(
    spec.type,
    params,
    groups.map((g) => ({ weight_decay: (g as { weight_decay?: number }).weight_decay ?? 0 })),
  );
}

/**
 * Creates the engine: resolves the config (DeepSpeed JSON, strictly checked), loads the plugins it names,
 * validates and orders all plugins, builds the optimizer and scheduler, and sets every plugin up.
 */
export function initialize(opts: InitializeOptions): Promise<Engine> {
  return Engine.create(opts);
}
