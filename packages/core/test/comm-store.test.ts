import { afterEach, describe, expect, it } from 'vitest';
import { CommError, CommTimeoutError, TCPStore, TCPStoreServer } from '../src/comm/index.js';

const TOKEN = 'job-token-for-tests';
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function serve(): Promise<TCPStoreServer> {
  const server = await TCPStoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  cleanup.push(() => server.close());
  return server;
}

async function client(server: TCPStoreServer, token = TOKEN, timeoutMs = 5000): Promise<TCPStore> {
  const c = await TCPStore.connect({ host: '127.0.0.1', port: server.port, token, timeoutMs });
  cleanup.push(() => c.close());
  return c;
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

describe('TCPStore', () => {
  it('sets, gets (waiting for the key), adds, compare-sets, waits and deletes across clients', async () => {
    const server = await serve();
    const a = await client(server);
    const b = await client(server);
    const pending = b.get('addr/1', 2000);
    await a.set('addr/1', '127.0.0.1:1234');
    expect(text(await pending)).toBe('127.0.0.1:1234');
    await a.set('bin', new Uint8Array([0, 255, 7]));
    expect([...(await b.get('bin'))]).toEqual([0, 255, 7]);
    const sums = await Promise.all([a.add('n', 1), b.add('n', 1), a.add('n', 5)]);
    expect(Math.max(...sums)).toBe(7); // atomic: some order of the three adds, none lost
    expect(await b.add('n', 0)).toBe(7);
    expect(text(await a.compareSet('leader', '', 'rank0'))).toBe('rank0');
    expect(text(await b.compareSet('leader', '', 'rank1'))).toBe('rank0'); // lost the race: sees the winner
    expect(text(await b.compareSet('leader', 'rank0', 'rank1'))).toBe('rank1');
    const waited = a.wait(['x', 'y'], 2000);
    await b.set('x', '1');
    await b.set('y', '2');
    await waited;
    expect(await a.delete('x')).toBe(true);
    expect(await a.delete('x')).toBe(false);
    expect(server.size).toBe(5);
  });

  it('times out a get or wait on a key nobody sets, with the key in the message', async () => {
    const c = await client(await serve());
    await expect(c.get('never', 200)).rejects.toThrow(CommTimeoutError);
    await expect(c.get('never', 200)).rejects.toThrow(/get\("never"\).*timed out after 0\.2 s/);
    await expect(c.wait(['a', 'b'], 200)).rejects.toThrow(/wait for \[a, b\].*timed out/);
  });

  it('rejects a wrong or missing job token and closes the connection', async () => {
    const server = await serve();
    await expect(client(server, 'wrong')).rejects.toThrow(`job token rejected by store at 127.0.0.1:${server.port}`);
    await expect(client(server, '')).rejects.toThrow(/job token rejected/);
    // the server keeps serving good clients
    const ok = await client(server);
    await ok.set('k', 'v');
  });

  it('retries until the server is up, within the timeout', async () => {
    const probe = await TCPStoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
    const port = probe.port;
    await probe.close();
    const connecting = TCPStore.connect({ host: '127.0.0.1', port, token: TOKEN, timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    const late = await TCPStoreServer.listen({ host: '127.0.0.1', port, token: TOKEN });
    cleanup.push(() => late.close());
    const c = await connecting;
    cleanup.push(() => c.close());
    expect(await c.add('n', 2)).toBe(2);
  });

  it('says clearly when the store is unreachable or the port is taken', async () => {
    const probe = await TCPStoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
    const port = probe.port;
    await probe.close();
    await expect(TCPStore.connect({ host: '127.0.0.1', port, token: TOKEN, timeoutMs: 400 })).rejects.toThrow(
      `could not reach the rendezvous store at 127.0.0.1:${port} within 0.4 s`,
    );
    const server = await serve();
    const taken = TCPStoreServer.listen({ host: '127.0.0.1', port: server.port, token: TOKEN });
    await expect(taken).rejects.toThrow(CommError);
    await expect(TCPStoreServer.listen({ host: '127.0.0.1', port: server.port, token: TOKEN })).rejects.toThrow(
      /port \d+ on 127\.0\.0\.1 is already in use/,
    );
  });

  it('fails pending calls when the server goes away', async () => {
    const server = await serve();
    const c = await client(server);
    const pending = c.get('never', 5000);
    await server.close();
    await expect(pending).rejects.toThrow(
      /rendezvous store at 127\.0\.0\.1:\d+.*did its host \(rank 0 or the launcher\) exit\?/,
    );
  });
});
