import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens and resolves with the actual port (port 0 picks a free one); a busy port rejects. */
export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
