/**
 * An upstream that never completes a TCP handshake, as a firewall that drops packets
 * would: a listening socket (python3, which can listen without accepting, unlike
 * node:net) whose accept queue is already full, so the kernel drops every further SYN
 * and a connect hangs until the client gives up. Stopped by its PID.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface BlackHole {
  url: string;
  port: number;
  close(): Promise<void>;
}

const LISTENER = [
  'import socket, sys, time',
  's = socket.socket()',
  "s.bind(('127.0.0.1', 0))",
  // Backlog 0: one queued connection fills the accept queue; nothing is ever accepted.
  's.listen(0)',
  'print(s.getsockname()[1], flush=True)',
  'sys.stdin.read()',
].join('\n');

export async function startBlackHole(): Promise<BlackHole> {
  const child = spawn('python3', ['-c', LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  // The one connection the queue holds: from now on every SYN is dropped.
  const filler: Socket = connect(port, '127.0.0.1');
  filler.on('error', () => undefined);
  await once(filler, 'connect');
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      filler.destroy();
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        process.kill(child.pid as number, 'SIGTERM');
        await exited;
      }
    },
  };
}
