import type { Parameter } from './parameter.js';

/** Tensor values by parameter name, as fp32 arrays (the exchange format of state dicts). */
export type StateDict = Record<string, { shape: number[]; values: Float32Array }>;

/**
 * A module with named parameters and children, after torch.nn.Module. Names follow registration order and
 * Hugging Face conventions so that checkpoints map 1:1.
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, Parameter>();
  private readonly children = new Map<string, Module>();

  /** Registers a parameter under `name` and returns it. */
  protected registerParameter<P extends Parameter>(name: string, p: P): P {
    this.params.set(name, p);
    return p;
  }

  /** Registers a child module under `name` and returns it. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Direct children, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every module of the tree, depth first, this one first (`''`). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /**
   * Every parameter with its dotted name; a parameter shared by two modules (tied weights) is listed once,
   * under its first name. Also stamps `Parameter.name` with that name.
   */
  namedParameters(prefix = ''): [string, Parameter][] {
    const seen = new Set<Parameter>();
    const out: [string, Parameter][] = [];
    const walk = (m: Module, pre: string) => {
      for (const [n, p] of m.params) {
        if (seen.has(p)) continue;
        seen.add(p);
        const full = pre ? `${pre}.${n}` : n;
        p.name = full;
        out.push([full, p]);
      }
      for (const [n, c] of m.children) walk(c, pre ? `${pre}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Total number of elements over all (deduplicated) parameters. */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Copies of every materialized parameter. */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [n, p] of this.namedParameters()) out[n] = { shape: p.shape.slice(), values: p.values() };
    return out;
  }

  /**
   * Loads values by name. With `strict` (default) a missing or unexpected name, or a shape mismatch, throws
   * an error listing all of them.
   */
  loadStateDict(sd: StateDict, strict = true): void {
    const named = new Map(this.namedParameters());
    const problems: string[] = [];
    for (const [n, p] of named) {
      const e = sd[n];
      if (!e) {
        if (strict) problems.push(`missing "${n}"`);
        continue;
      }
      if (e.shape.join(',') !== p.shape.join(',')) {
        problems.push(`"${n}": shape [${e.shape}] in state dict, [${p.shape}] in model`);
        continue;
      }
      p.load(e.values);
    }
    if (strict) for (const n of Object.keys(sd)) if (!named.has(n)) problems.push(`unexpected "${n}"`);
    if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
  }

  /** Disposes every parameter tensor (the module is unusable afterwards). */
  dispose(): void {
    for (const p of this.parameters()) {
      p.tensor?.dispose();
      p.tensor = null;
    }
  }
}

/** Total bytes of fp32 parameter values held by tensors of this module (materialized ones only). */
export function materializedBytes(m: Module): number {
  return m.parameters().reduce((a, p) => a + (p.tensor ? p.size * 4 : 0), 0);
}
