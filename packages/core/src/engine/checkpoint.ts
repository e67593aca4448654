import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '../errors.js';
import { readSafetensorsFile, type SafetensorsTensor, writeSafetensors } from '../io/safetensors.js';
import type { OwnerState } from '../plugin.js';
import type { PartitionMeta } from '../zero/partition.js';
import { replicatedLayout, reshardOwnerState, type TargetLayout } from '../zero/reshard.js';
import { sha256File, writeFileAtomic, writeTextAtomic } from './atomic-files.js';
import type { Engine } from './engine.js';

/** Version of the on-disk layout below; bumped on incompatible changes. */
export const CHECKPOINT_FORMAT = 1;

/** One data file of a checkpoint, as recorded in the manifest. */
export interface ManifestFile {
  file: string;
  rank: number;
  kind: 'model' | 'owner';
  bytes: number;
  sha256: string;
  /** Tensor index: name -> shape. */
  tensors: Record<string, number[]>;
}

/**
 * `<dir>/<tag>/manifest.json`: everything needed to resume, and the index of the data files. Written last,
 * after every data file is complete; `<dir>/latest` names the newest complete tag (DESIGN.md section 8).
 */
export interface CheckpointManifest {
  format: number;
  tag: string;
  /** Saved without optimizer, scheduler and plugin state. */
  weightsOnly?: boolean;
  createdAt: string;
  world: {
    worldSize: number;
    dataParallelSize: number;
    tensorParallelSize: number;
    pipelineParallelSize: number;
    zeroStage: number;
  };
  counters: { globalSteps: number; microSteps: number; skippedSteps: number; globalSamples: number };
  config: unknown;
  rng: unknown;
  scheduler: Record<string, unknown> | null;
  owner: Record<string, unknown>;
  plugins: Record<string, Record<string, unknown>>;
  clientState: unknown;
  files: ManifestFile[];
}

function toSafetensors(
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
): Record<string, SafetensorsTensor> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const [k, v] of Object.entries(tensors)) out[k] = { dtype: 'F32', shape: v.shape, data: v.data };
  return out;
}

function writeData(
  dir: string,
  file: string,
  rank: number,
  kind: ManifestFile['kind'],
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
): ManifestFile {
  const full = path.join(dir, file);
  writeFileAtomic(full, (tmp) => writeSafetensors(tmp, toSafetensors(tensors), { format: 'zeroflow', kind }));
  return {
    file,
    rank,
    kind,
    bytes: fs.statSync(full).size,
    sha256: sha256File(full),
    tensors: Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.shape])),
  };
}

/** Options of `saveCheckpoint`. */
export interface SaveCheckpointOptions {
  /** Default `global_step<N>`. */
  tag?: string;
  /** Anything JSON-able to get back from `loadCheckpoint` (e.g. the data loader position). */
  clientState?: unknown;
  /** Weights only: no optimizer, scheduler or plugin state (smaller; resumes need a fresh optimizer). */
  weightsOnly?: boolean;
}

/** Saves a checkpoint under `<dir>/<tag>` and points `<dir>/latest` at it. Returns the tag. */
export async function saveCheckpoint(engine: Engine, dir: string, opts: SaveCheckpointOptions = {}): Promise<string> {
  const tag = opts.tag ?? `global_step${engine.globalSteps}`;
  if (!/^[\w.-]+$/.test(tag))
    throw new CheckpointError(`checkpoint tag "${tag}" may only contain letters, digits, '_', '-' and '.'`);
  if (engine.microSteps % engine.gradientAccumulationSteps !== 0) {
    throw new CheckpointError('saveCheckpoint must be called at a gradient accumulation boundary (after step())');
  }
  const tagDir = path.join(dir, tag);
  fs.mkdirSync(tagDir, { recursive: true });
  const rank = engine.world.rank;
  const files: ManifestFile[] = [];
  // Partitioned parameters (ZeRO-3) are gathered by their owner on every rank (a collective).
  const gathered = (await engine.gradientOwner.fullParameters?.()) ?? {};
  if (rank === 0) {
    const model: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const { name, param } of engine.parameters) {
      const data = gathered[name] ?? (param.tensor ? param.values() : null);
      if (data) model[name] = { shape: param.shape, data };
    }
    files.push(writeData(tagDir, 'model.safetensors', 0, 'model', model));
  }
  const owner: OwnerState = opts.weightsOnly ? { tensors: {}, meta: {} } : await engine.gradientOwner.stateDict();
  // Replicated state (stage 0) is written once, by rank 0; partitioned state by every rank.
  if (!opts.weightsOnly && (rank === 0 || !owner.meta.replicated)) {
    files.push(writeData(tagDir, `owner_rank${rank}.safetensors`, rank, 'owner', owner.tensors));
  }
  const comm = engine.comm;
  if (comm) {
    // Each rank lists its files; rank 0 writes the manifest only after every part is complete on disk.
    writeTextAtomic(path.join(tagDir, `rank${rank}.part.json`), JSON.stringify(files));
    await comm.barrier().promise;
    if (rank === 0) {
      files.length = 0;
      for (let r = 0; r < engine.world.worldSize; r++) {
        const part = path.join(tagDir, `rank${r}.part.json`);
        files.push(...(JSON.parse(fs.readFileSync(part, 'utf8')) as ManifestFile[]));
        fs.rmSync(part);
      }
    }
  }
  const plugins: CheckpointManifest['plugins'] = {};
  if (!opts.weightsOnly)
    for (const h of engine.pluginHooks) if (h.hooks.stateDict) plugins[h.name] = h.hooks.stateDict();
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    tag,
    weightsOnly: opts.weightsOnly === true,
    createdAt: new Date().toISOString(),
    world: {
      worldSize: engine.world.worldSize,
      dataParallelSize: engine.world.dataParallelSize,
      tensorParallelSize: engine.world.tensorParallelSize,
      pipelineParallelSize: engine.world.pipelineParallelSize,
      zeroStage: engine.config.zero_optimization?.stage ?? 0,
    },
    counters: {
      globalSteps: engine.globalSteps,
      microSteps: engine.microSteps,
      skippedSteps: engine.skippedSteps,
      globalSamples: engine.globalSamples,
    },
    config: engine.config,
    rng: engine.rng.getState(),
    scheduler: opts.weightsOnly ? null : (engine.lrScheduler?.stateDict() ?? null),
    owner: owner.meta,
    plugins,
    clientState: opts.clientState ?? null,
    files,
  };
  if (rank === 0) {
    writeTextAtomic(path.join(tagDir, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
    writeTextAtomic(path.join(dir, 'latest'), `${tag}\n`);
  }
  // Nobody returns (and perhaps loads) before the manifest exists.
  if (comm) await comm.barrier().promise;
  return tag;
}

/** Reads and checks a manifest: present, parseable, known format, data files of the recorded size and checksum. */
export function readManifest(dir: string, tag?: string): CheckpointManifest {
  let t = tag;
  if (!t) {
    const latest = path.join(dir, 'latest');
    if (!fs.existsSync(latest))
      throw new CheckpointError(`no checkpoint in ${dir}: ${latest} does not exist (pass a tag, or save first)`);
    t = fs.readFileSync(latest, 'utf8').trim();
  }
  const file = path.join(dir, t, 'manifest.json');
  if (!fs.existsSync(file))
    throw new CheckpointError(
      `checkpoint "${t}" in ${dir} has no manifest.json: it is incomplete or not a ZeroFlow checkpoint`,
    );
  let m: CheckpointManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new CheckpointError(`${file} is corrupted: ${(e as Error).message}`);
  }
  if (m.format !== CHECKPOINT_FORMAT)
    throw new CheckpointError(`${file} has format ${m.format}; this ZeroFlow reads format ${CHECKPOINT_FORMAT}`);
  for (const f of m.files) {
    const p = path.join(dir, t, f.file);
    if (!fs.existsSync(p)) throw new CheckpointError(`checkpoint "${t}" is missing ${f.file}`);
    const size = fs.statSync(p).size;
    if (size !== f.bytes)
      throw new CheckpointError(`${p} is ${size} bytes, the manifest says ${f.bytes}: truncated or replaced`);
    if (sha256File(p) !== f.sha256) throw new CheckpointError(`${p} fails its SHA-256 check: the file is corrupted`);
  }
  return m;
}

function loadTensors(file: string): Record<string, { shape: number[]; data: Float32Array }> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of readSafetensorsFile(file, file).tensors) {
    if (v.dtype !== 'F32') throw new CheckpointError(`${file}: tensor ${k} has dtype ${v.dtype}, expected F32`);
    out[k] = { shape: v.shape, data: v.data as Float32Array };
  }
  return out;
}

/** Loads a checkpoint (the `latest` one unless `tag` is given) into the engine; returns the client state. */
export async function loadCheckpoint(
  engine: Engine,
  dir: string,
  opts: { tag?: string; loadOptimizerStates?: boolean } = {},
): Promise<unknown> {
  const m = readManifest(dir, opts.tag);
  if (m.weightsOnly && opts.loadOptimizerStates !== false) {
    throw new CheckpointError(
      `checkpoint "${m.tag}" was saved with weightsOnly: it has no optimizer state; load it with { loadOptimizerStates: false }`,
    );
  }
  const tagDir = path.join(dir, m.tag);
  const modelFile = m.files.find((f) => f.kind === 'model');
  if (!modelFile) throw new CheckpointError(`checkpoint "${m.tag}" has no model weights file`);
  const weights = loadTensors(path.join(tagDir, modelFile.file));
  const missing = engine.parameters.filter((p) => !weights[p.name]).map((p) => p.name);
  if (missing.length) throw new CheckpointError(`checkpoint "${m.tag}" lacks parameters: ${missing.join(', ')}`);
  for (const { name, param } of engine.parameters) {
    const w = weights[name];
    if (w.shape.join(',') !== param.shape.join(',')) {
      throw new CheckpointError(`parameter ${name}: shape [${w.shape}] in checkpoint, [${param.shape}] in model`);
    }
    param.load(w.data);
  }
  if (opts.loadOptimizerStates !== false) {
    const stage = engine.config.zero_optimization?.stage ?? 0;
    const sizes = new Map(engine.parameters.map((p) => [p.name, p.param.size]));
    const replicated = replicatedLayout(engine.paramGroups, sizes);
    let target: TargetLayout = { zeroStage: 0, partitions: replicated, dpRank: 0 };
    if (stage !== 0) {
      const own = await engine.gradientOwner.stateDict();
      target = {
        zeroStage: stage,
        partitions: own.meta.partitions as PartitionMeta[],
        dpRank: engine.world.dataParallelRank,
      };
      // An owner that keeps its own parameter shard (ZeRO-3) gets it cut from the saved full weights.
      if (Object.keys(own.tensors).some((k) => k.startsWith('params.group')))
        target.parameters = new Map(Object.entries(weights).map(([k, v]) => [k, v.data]));
    }
    const saved = (m.owner.partitions as PartitionMeta[] | undefined) ?? replicated;
    const sameLayout = m.world.zeroStage === stage && JSON.stringify(saved) === JSON.stringify(target.partitions);
    let state: OwnerState;
    if (sameLayout) {
      // stage-0 state is complete in rank 0's file
      const ownerRank = m.owner.replicated === true ? 0 : engine.world.rank;
      const ownerFile = m.files.find((f) => f.kind === 'owner' && f.rank === ownerRank);
      if (!ownerFile)
        throw new CheckpointError(`checkpoint "${m.tag}" has no optimizer state for rank ${engine.world.rank}`);
      state = { tensors: loadTensors(path.join(tagDir, ownerFile.file)), meta: m.owner };
    } else {
      // another world size or stage (ZeRO-3 included): assemble the full state from every rank's shard,
      // slice this rank's part
      state = reshardOwnerState(m, tagDir, target, replicated);
    }
    await engine.gradientOwner.loadStateDict(state);
    if (m.scheduler && engine.lrScheduler) engine.lrScheduler.loadStateDict(m.scheduler);
    for (const h of engine.pluginHooks) {
      const s = m.plugins[h.name];
      if (s && h.hooks.loadStateDict) h.hooks.loadStateDict(s);
    }
  }
  engine.globalSteps = m.counters.globalSteps;
  engine.microSteps = m.counters.microSteps;
  engine.skippedSteps = m.counters.skippedSteps;
  engine.globalSamples = m.counters.globalSamples;
  engine.rng.setState(m.rng as Parameters<typeof engine.rng.setState>[0]);
  engine.gradientOwner.zeroGrad();
  return m.clientState;
}
