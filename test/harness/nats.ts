/**
 * A real `nats-server` (Debian's package) for cluster tests: on 127.0.0.1 (or a given address)
 * with a port picked free by the test, started and stopped by PID. The process is tracked by a
 * {@link TestGroup}, so the suite's safety net ends it even when a test file crashes.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { freePort, startNatsServer, stopProcess } from '../../samples/lib/nats.js';
import { TestGroup } from './group.js';

export class NatsServer {
  private child: ChildProcess | undefined;
  readonly log: string[] = [];
  private readonly group = TestGroup.create('nats');

  private constructor(
    readonly host: string,
    readonly port: number,
    private readonly args: string[],
  ) {}

  /** Starts nats-server on `host` and a free port (with more of its flags: `args`), and waits until it accepts connections. */
  static async start(host = '127.0.0.1', args: string[] = []): Promise<NatsServer> {
    const server = new NatsServer(host, await freePort(host), args);
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
    this.child = this.group.track(await startNatsServer(this.host, this.port, this.log, this.args));
  }

  /** Stops the server by PID (SIGKILL: as if the host of the server died) and waits until it is gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child) await stopProcess(this.child, signal);
  }

  /** Stops the server and forgets it. */
  async cleanup(): Promise<void> {
    await this.stop();
    await this.group.cleanup();
  }
}

/**
 * One nats-server for a whole test file: started before its tests, ended (by PID) after them.
 * Returns a getter, since the server exists only once `beforeAll` ran.
 */
export function useNatsServer(): () => NatsServer {
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.cleanup();
  });
  return () => server!;
}
