/**
 * The benchmark's child processes: started here, remembered here, and stopped here —
 * at the end, on an error, on Ctrl-C (SIGINT) or SIGTERM — so that none outlives the run.
 * Every child is stopped by its own PID; nothing is killed by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const NEXT_BIN = createRequire(import.meta.url).resolve('next/dist/bin/next');

const OUTPUT_KEPT = 16_384;

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** The last part of what it wrote (stdout and stderr), for a diagnosis when it fails. */
  output(): string;
  /** Resolves when it has exited. */
  exited: Promise<void>;
}

const live = new Set<Child>();
const cleanups: Array<() => Promise<void>> = [];
let stopping = false;

/** Progress for the person running the benchmark: stderr, with the elapsed time. */
const started = Date.now();
export function progress(message: string): void {
  const seconds = Math.round((Date.now() - started) / 1000);
  const stamp = `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
  process.stderr.write(`[bench ${stamp}] ${message}\n`);
}

export function elapsedSeconds(): number {
  return (Date.now() - started) / 1000;
}

export function startChild(
  name: string,
  args: string[],
  options: { env?: Record<string, string | undefined>; echo?: boolean } = {},
): Child {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  let kept = '';
  const keep = (chunk: Buffer) => {
    kept = (kept + chunk.toString()).slice(-OUTPUT_KEPT);
    if (options.echo) process.stderr.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const entry: Child = {
    name,
    process: child,
    pid: child.pid,
    output: () => kept,
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  live.add(entry);
  void entry.exited.then(() => live.delete(entry));
  return entry;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: Child, graceMs = 5_000): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** Runs `node <args>` to completion with its output on stderr (builds). */
export async function runToCompletion(name: string, args: string[], env: Record<string, string | undefined> = {}): Promise<void> {
  const child = startChild(name, args, { env, echo: true });
  await child.exited;
  if (child.process.exitCode !== 0) throw new Error(`${name} failed (exit ${child.process.exitCode ?? child.process.signalCode})`);
}

/** A port nobody listens on right now (shared with the end-to-end helpers). */
export { freePort } from '../../test/helpers/ports.ts';

/** Polls `url` until anything answers over HTTP; fails early when the child has exited. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`${child.name} exited before it was ready:\n${child.output()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${child.name} was not ready after ${timeoutMs} ms:\n${child.output()}`);
}

/** The resident set of a process now, in bytes (Linux /proc). */
export function residentBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; returns the peak. */
export function sampleResident(pid: number, intervalMs = 100): { stop(): number } {
  let peak = residentBytes(pid) ?? 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, residentBytes(pid) ?? 0);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, residentBytes(pid) ?? 0);
    },
  };
}

/** Something to close at the end (in-process servers), in reverse order of registration. */
export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

/** Stops every child and runs every cleanup; safe to call more than once. */
export async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([...live].map((child) => stopChild(child, 3_000)));
  for (const cleanup of cleanups.reverse()) {
    await Promise.race([cleanup().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  }
}

/** Ctrl-C and SIGTERM stop everything before the process exits; so does any exit at all. */
export function installSignalHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping every child process`);
      void shutdown().finally(() => process.exit(130));
    });
  }
  // Last resort (an uncaught error, process.exit elsewhere): no child is left running.
  process.on('exit', () => {
    for (const child of live) child.process.kill('SIGKILL');
  });
}
