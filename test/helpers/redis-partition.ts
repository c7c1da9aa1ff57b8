/**
 * A TCP relay in front of a real Redis, to play the network rather than the protocol:
 * `freezeOpenConnections()` silences every connection open at that moment, in both
 * directions, without closing it — what a partition or a failover to another host does
 * to a client's socket (no FIN, no RST; TCP would notice only after many minutes).
 * Connections opened afterwards are relayed normally: the "new primary" answers.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface RedisRelay {
  url: string;
  /** Connections relayed so far (each new client connection counts). */
  readonly connections: number;
  freezeOpenConnections(): void;
  close(): Promise<void>;
}

export async function startRedisRelay(targetPort: number): Promise<RedisRelay> {
  const open = new Set<{ client: Socket; upstream: Socket }>();
  const frozen: Socket[] = [];
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    const pair = { client, upstream };
    open.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    freezeOpenConnections() {
      for (const { client, upstream } of open) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Read nothing more from either side and send nothing: a silent, open socket.
        client.pause();
        upstream.pause();
        frozen.push(client, upstream);
      }
      open.clear();
    },
    async close() {
      for (const socket of frozen) socket.destroy();
      for (const { client, upstream } of open) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
