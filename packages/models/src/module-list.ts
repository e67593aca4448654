import { Module } from '@zeroflow/core';

/** An ordered list of child modules registered as `0`, `1`, ... (torch's nn.ModuleList, HF's `h.{i}`). */
export class ModuleList<M extends Module> extends Module implements Iterable<M> {
  readonly items: readonly M[];

  constructor(items: M[]) {
    super();
    for (const [i, m] of items.entries()) this.registerModule(String(i), m);
    this.items = items.slice();
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
