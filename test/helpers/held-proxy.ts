// A TCP proxy in front of a server (the test's redis-server) that can hold
// what its clients send: held, commands wait in the proxy, as behind a slow
// or stalled network, and go on in order once let through. A test uses it to
// fix when a gateway's command reaches the server.
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface HeldProxy {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** From now on, what clients send waits in the proxy. */
  hold(): void;
  /** Bytes waiting in the proxy. */
  held(): string;
  /** Sends what waits, in order, and passes everything through again. */
  release(): void;
  close(): Promise<void>;
}

export async function startHeldProxy(target: { host: string; port: number }): Promise<HeldProxy> {
  let holding = false;
  const waiting: Array<{ to: Socket; data: Buffer }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(target);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (data: Buffer) => (holding ? waiting.push({ to: upstream, data }) : upstream.write(data)));
    upstream.on('data', (data: Buffer) => client.write(data));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    hold: () => void (holding = true),
    held: () => Buffer.concat(waiting.map((w) => w.data)).toString('latin1'),
    release() {
      holding = false;
      for (const { to, data } of waiting.splice(0)) to.write(data);
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}
