export * from './comms-logger.js';
export * from './init.js';
export { createCommPlugin } from './plugin.js';
export * from './registry.js';
export * from './store-client.js';
export * from './store-server.js';
export * from './types.js';
