/**
 * A local `nats-server` (Debian's package) for the samples, the cluster benchmark and tests: on a
 * free port of a loopback address, ended by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

/** A free TCP port on `host` (the kernel's pick). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True when `nats-server` is installed (scripts/setup.sh installs it). */
export function haveNatsServer(): boolean {
  return spawnSync('nats-server', ['--version']).status === 0;
}

/**
 * Starts `nats-server -a host -p port` (and `args`: auth, TLS) and resolves once it accepts connections. `log` collects
 * its output (for error messages).
 */
export async function startNatsServer(host: string, port: number, log: string[] = [], args: string[] = []): Promise<ChildProcess> {
  const child = spawn('nats-server', ['-a', host, '-p', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  const deadline = Date.now() + 20_000;
  while (!(await listening(host, port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}):\n${log.join('')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not listen on ${host}:${port} within 20 s:\n${log.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return child;
}

/** Ends a process by PID and waits until it is gone. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}
