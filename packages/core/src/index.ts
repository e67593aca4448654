export { tf } from './tf.js';
export * from './errors.js';
export * from './config/index.js';
export * from './optim/index.js';
export * from './monitor/index.js';
export * from './nn/index.js';
