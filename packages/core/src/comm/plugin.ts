import type { ZeroFlowPlugin } from '../plugin.js';
import { CORE_VERSION } from '../version.js';
import { type DistributedContext, initDistributed } from './init.js';
import type { ProcessGroup } from './types.js';

/**
 * The ZeroFlow plugin of a comm backend package: at setup it joins the job with that backend (unless
 * another plugin already provides `comm`) and offers the world ProcessGroup as the `comm` service; at
 * teardown it leaves. Backend packages export `createCommPlugin({ name, version, backend })`.
 */
export function createCommPlugin(opts: { name: string; version: string; backend: string }): ZeroFlowPlugin {
  let joined: DistributedContext | undefined;
  return {
    name: opts.name,
    version: opts.version,
    coreVersion: `^${CORE_VERSION}`,
    provides: ['comm'],
    async setup(ctx) {
      if (ctx.service<ProcessGroup>('comm')) return;
      joined = await initDistributed({
        backend: opts.backend,
        rank: ctx.world.rank,
        worldSize: ctx.world.worldSize,
        localRank: ctx.world.localRank,
        localWorldSize: ctx.world.localWorldSize,
        // the env wins over the config, so an operator can raise a timeout without editing the job's config
        timeoutMs: process.env.ZEROFLOW_COMM_TIMEOUT_MS ? undefined : (ctx.config.comm_timeout_ms ?? undefined),
      });
      ctx.provideService('comm', joined.world);
      ctx.log(`comm: ${opts.backend} backend, ${joined.world.size} ranks`);
    },
    hooks: {
      async teardown() {
        const j = joined;
        joined = undefined;
        await j?.close();
      },
    },
  };
}
