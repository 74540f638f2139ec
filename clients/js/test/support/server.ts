// SPDX-License-Identifier: Apache-2.0
// Starts a real `vellum serve` for integration and browser tests: a fresh data
// directory, an ephemeral port on 127.0.0.1, stderr kept in a log file.
// The binary is $VELLUM_BIN, else the release build of this checkout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** clients/js (this file is compiled to clients/js/dist/test/support/). */
export const packageRoot = path.resolve(here, '..', '..', '..');
export const repoRoot = path.resolve(packageRoot, '..', '..');

export function vellumBinary(): string {
  return process.env.VELLUM_BIN ?? path.join(repoRoot, 'build', 'release', 'src', 'vellum');
}

export interface ServerOptions {
  /** Extra arguments after `serve`. */
  args?: string[];
  /** Reuse a data directory (restarts); default: a fresh temporary one. */
  dataDir?: string;
  /** Fixed listen address (restart on the same port); default 127.0.0.1:0. */
  listen?: string;
  env?: Record<string, string>;
}

export interface RunningServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** ws://127.0.0.1:<port> */
  wsUrl: string;
  port: number;
  dataDir: string;
  logPath: string;
  process: ChildProcess;
  /** SIGTERM and wait (clean shutdown). */
  stop(): Promise<void>;
  /** SIGKILL and wait (a crash). */
  kill(): Promise<void>;
  logTail(bytes?: number): string;
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'vellum-js-'));
  const logPath = path.join(dataDir + '.log');
  const log = openSync(logPath, 'a');
  const args = ['--data', dataDir, 'serve', '--listen', options.listen ?? '127.0.0.1:0',
    ...(options.args ?? [])];
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('VELLUM_')) env[key] = value;
  }
  Object.assign(env, options.env ?? {});
  const child = spawn(vellumBinary(), args, { stdio: ['ignore', 'pipe', log], env });
  closeSync(log);
  const logTail = (bytes = 4000) => {
    try {
      const text = readFileSync(logPath, 'utf8');
      return text.slice(-bytes);
    } catch {
      return '';
    }
  };
  const port = await new Promise<number>((resolve, reject) => {
    let line = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vellum serve: no "listening on" line within 15 s; log: ${logTail()}`));
    }, 15_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      line += chunk;
      const match = /^listening on (\S+):(\d+)\n/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[2]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vellum serve exited with ${code} before listening; log: ${logTail()}`));
    });
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    dataDir,
    logPath,
    process: child,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    logTail,
  };
}

/** Removes a data directory made by startServer (call after stop()). */
export function removeDataDir(server: RunningServer): void {
  rmSync(server.dataDir, { recursive: true, force: true });
  rmSync(server.logPath, { force: true });
}
