/**
 * A real `nats-server` (Debian's package) for cluster tests: on 127.0.0.1 (or a given address)
 * with a port picked free by the test, started and stopped by PID. The process is tracked by a
 * {@link TestGroup}, so the suite's safety net ends it even when a test file crashes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { TestGroup } from './group.js';

/** A free TCP port on `host` (the kernel's pick). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class NatsServer {
  private child: ChildProcess | undefined;
  readonly log: string[] = [];
  private readonly group = TestGroup.create('nats');

  private constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  /** Starts nats-server on `host` and a free port, and waits until it accepts connections. */
  static async start(host = '127.0.0.1'): Promise<NatsServer> {
    const server = new NatsServer(host, await freePort(host));
    await server.run();
    return server;
  }

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** (Re)starts the server on the same address and port. */
  async run(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const child = spawn('nats-server', ['-a', this.host, '-p', String(this.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => this.log.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.log.push(d.toString()));
    this.group.track(child);
    this.child = child;
    const deadline = Date.now() + 20_000;
    while (!(await canConnect(this.host, this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}):\n${this.log.join('')}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${this.url} within 20 s:\n${this.log.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops the server by PID (SIGKILL: as if the host of the server died) and waits until it is gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Stops the server and forgets it. */
  async cleanup(): Promise<void> {
    await this.stop();
    await this.group.cleanup();
  }
}
