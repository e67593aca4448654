/**
 * Ring collectives as promise graphs over segments. Each block of the buffer is cut into segments; a
 * segment moves to the next rank as soon as it is ready (received, reduced), so the ring is pipelined and
 * peers may run ahead (the framing in the engine keeps early segments aside).
 *
 * Ranks here are GROUP ranks; `me` is this rank's. Reduce-scatter leaves block r fully reduced on rank r;
 * block b's sum is accumulated in the fixed ring order b+1, b+2, ..., b, so results are deterministic.
 */
import type { Reducer } from './reduce.js';

/** What an algorithm may do: move segments to and from group ranks, with the engine's bookkeeping. */
export interface RingIO {
  readonly n: number;
  readonly me: number;
  /** Bytes per segment the pipeline aims for. */
  readonly segmentBytes: number;
  /** Receives frame `step` from `from` into `dest` (or reduces it into `dest` when `reduce` is given). */
  recv(from: number, step: number, dest: Uint8Array, reduce?: Reducer): Promise<void>;
  /** Sends `payload` as frame `step` to `to`; resolves once the memory may be reused. */
  send(to: number, step: number, payload: Uint8Array): Promise<void>;
}

/** Element ranges of `n` blocks over `count` elements: the first `count % n` blocks get one more. */
export function partition(count: number, n: number): { start: number; length: number }[] {
  const q = Math.floor(count / n);
  const rem = count % n;
  return Array.from({ length: n }, (_, b) => ({ start: b * q + Math.min(b, rem), length: q + (b < rem ? 1 : 0) }));
}

/** Cuts `data` (elements of `eb` bytes) into n blocks of S segments each; seg(b, s) is a byte view. */
function segmenter(data: Uint8Array, eb: number, n: number, segmentBytes: number) {
  const blocks = partition(data.byteLength / eb, n);
  const longest = blocks[0].length * eb;
  const S = Math.max(1, Math.ceil(longest / segmentBytes));
  const seg = (b: number, s: number): Uint8Array => {
    const { start, length } = blocks[((b % n) + n) % n];
    const from = start + Math.floor((s * length) / S);
    const to = start + Math.floor(((s + 1) * length) / S);
    return data.subarray(from * eb, to * eb);
  };
  return { S, seg };
}

/**
 * Reduce-scatter (and, with `gather`, all-reduce) on `data` in place. `finish(view)` runs on each segment of
 * this rank's block once it is fully reduced (the `avg` division).
 */
export async function ringReduce(
  io: RingIO,
  data: Uint8Array,
  eb: number,
  reduce: Reducer,
  finish: (view: Uint8Array) => void,
  gather: boolean,
): Promise<void> {
  const { n, me } = io;
  if (n === 1) {
    finish(data);
    return;
  }
  const { S, seg } = segmenter(data, eb, n, io.segmentBytes);
  const left = (me - 1 + n) % n;
  const right = (me + 1) % n;
  const agBase = (n - 1) * S;
  const all: Promise<void>[] = [];
  // sent[k][s]: reduce-scatter step k has sent segment s (its memory is free to be overwritten by all-gather)
  const sent: Promise<void>[][] = [];
  const received: Promise<void>[][] = [];
  for (let k = 0; k < n - 1; k++) {
    received.push([]);
    sent.push([]);
    for (let s = 0; s < S; s++) received[k].push(io.recv(left, k * S + s, seg(me - k - 2, s), reduce));
  }
  for (let k = 0; k < n - 1; k++) {
    for (let s = 0; s < S; s++) {
      const payload = seg(me - k - 1, s);
      const p =
        k === 0 ? io.send(right, s, payload) : received[k - 1][s].then(() => io.send(right, k * S + s, payload));
      sent[k].push(p);
      all.push(p, received[k][s]);
    }
  }
  for (let s = 0; s < S; s++) {
    const own = received[n - 2][s].then(() => finish(seg(me, s)));
    all.push(own);
    if (!gather) continue;
    // all-gather: step k sends block me-k and receives block me-k-1, which reduce-scatter step k sent
    let prev = own.then(() => io.send(right, agBase + s, seg(me, s)));
    all.push(prev);
    for (let k = 0; k < n - 1; k++) {
      const got = sent[k][s].then(() => io.recv(left, agBase + k * S + s, seg(me - k - 1, s)));
      all.push(got);
      if (k < n - 2) {
        prev = got.then(() => io.send(right, agBase + (k + 1) * S + s, seg(me - k - 1, s)));
        all.push(prev);
      }
    }
  }
  await Promise.all(all);
}

/** All-gather in place: `data` holds n equal blocks, block `me` already filled. */
export async function ringAllGather(io: RingIO, data: Uint8Array, eb: number): Promise<void> {
  const { n, me } = io;
  if (n === 1) return;
  const { S, seg } = segmenter(data, eb, n, io.segmentBytes);
  const left = (me - 1 + n) % n;
  const right = (me + 1) % n;
  const all: Promise<void>[] = [];
  for (let s = 0; s < S; s++) {
    all.push(io.send(right, s, seg(me, s)));
    for (let k = 0; k < n - 1; k++) {
      const block = me - k - 1;
      const got = io.recv(left, k * S + s, seg(block, s));
      all.push(got);
      if (k < n - 2) all.push(got.then(() => io.send(right, (k + 1) * S + s, seg(block, s))));
    }
  }
  await Promise.all(all);
}

/**
 * Broadcast from group rank `root` along the ring root, root+1, ..., root-1, pipelined by segment. The last
 * rank acknowledges to the root, so every rank sends one frame (a mismatch is seen by someone).
 */
export async function ringBroadcast(io: RingIO, data: Uint8Array, root: number): Promise<void> {
  const { n, me } = io;
  if (n === 1) return;
  const S = Math.max(1, Math.ceil(data.byteLength / io.segmentBytes));
  const seg = (s: number) =>
    data.subarray(Math.floor((s * data.byteLength) / S), Math.floor(((s + 1) * data.byteLength) / S));
  const pos = (me - root + n) % n;
  const left = (me - 1 + n) % n;
  const right = (me + 1) % n;
  const all: Promise<void>[] = [];
  if (pos === 0) {
    for (let s = 0; s < S; s++) all.push(io.send(right, s, seg(s)));
    all.push(io.recv(left, S, new Uint8Array(0)));
  } else {
    for (let s = 0; s < S; s++) {
      const got = io.recv(left, s, seg(s));
      all.push(pos < n - 1 ? got.then(() => io.send(right, s, seg(s))) : got);
    }
    if (pos === n - 1) all.push(Promise.all(all.slice()).then(() => io.send(right, S, new Uint8Array(0))));
  }
  await Promise.all(all);
}

/** Point to point: the frames of one message. */
export async function sendMessage(io: RingIO, to: number, data: Uint8Array): Promise<void> {
  const S = Math.max(1, Math.ceil(data.byteLength / io.segmentBytes));
  const all: Promise<void>[] = [];
  for (let s = 0; s < S; s++) {
    all.push(
      io.send(to, s, data.subarray(Math.floor((s * data.byteLength) / S), Math.floor(((s + 1) * data.byteLength) / S))),
    );
  }
  await Promise.all(all);
}

export async function recvMessage(io: RingIO, from: number, data: Uint8Array): Promise<void> {
  const S = Math.max(1, Math.ceil(data.byteLength / io.segmentBytes));
  const all: Promise<void>[] = [];
  for (let s = 0; s < S; s++) {
    all.push(
      io.recv(
        from,
        s,
        data.subarray(Math.floor((s * data.byteLength) / S), Math.floor(((s + 1) * data.byteLength) / S)),
      ),
    );
  }
  await Promise.all(all);
}
