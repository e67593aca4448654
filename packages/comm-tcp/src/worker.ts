/**
 * Entry of the socket thread. The main thread posts operations; this thread moves and reduces the data in
 * shared staging memory and flips the op's status word (Atomics.notify), which wakes a main thread blocked
 * in `Work.wait()`. Results also go out on the completion port for `Work.promise`.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Engine } from './engine.js';
import { Mesh } from './mesh.js';
import { type OpRequest, type OpResult, STATUS_DONE, STATUS_FAILED, type WorkerConfig } from './wire.js';

interface StartData {
  config: WorkerConfig;
  completions: MessagePort;
}

const { config, completions } = workerData as StartData;
const control = new Int32Array(config.control);

const engine = new Engine(config.rank, config.segmentBytes, (result: OpResult, slot: number) => {
  // message first: a main thread woken by the status word reads it synchronously from the port
  completions.postMessage(result);
  Atomics.store(control, slot, result.ok ? STATUS_DONE : STATUS_FAILED);
  Atomics.notify(control, slot);
});
const mesh = new Mesh(config.rank, config.worldSize, config.token, engine);
engine.mesh = mesh;

type Command =
  | OpRequest
  | { type: 'listen' }
  | { type: 'connect'; addresses: string[] }
  | { type: 'shutdown'; slot: number; graceMs: number };

parentPort!.on('message', (cmd: Command) => {
  switch (cmd.type) {
    case 'op':
      engine.run(cmd);
      return;
    case 'listen':
      mesh.listen(config.listenHost).then(
        (port) => parentPort!.postMessage({ type: 'listening', port }),
        (err: Error) =>
          parentPort!.postMessage({ type: 'error', message: `cannot listen on ${config.listenHost}: ${err.message}` }),
      );
      return;
    case 'connect':
      mesh.connectAll(cmd.addresses, config.connectTimeoutMs).then(
        () => parentPort!.postMessage({ type: 'ready' }),
        (err: Error) => parentPort!.postMessage({ type: 'error', message: err.message }),
      );
      return;
    case 'shutdown':
      mesh.close(cmd.graceMs).finally(() => {
        Atomics.store(control, cmd.slot, STATUS_DONE);
        Atomics.notify(control, cmd.slot);
        parentPort!.close();
      });
      return;
  }
});
