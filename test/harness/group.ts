/**
 * Test groups: each owns a unique --file-prefix, spawns real agent processes, and on cleanup
 * ends every process it spawned (by PID) and removes the group's runtime dir and hugepage files,
 * even when a test failed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeOptions } from '../../src/index.js';
import type { Fixture, Remote } from './fixtures.js';
import { agentScript, pidDir } from './paths.js';

let counter = 0;

/** A unique, short --file-prefix for one test group. */
export function uniquePrefix(label: string): string {
  counter += 1;
  return `mpbt_${label}_${process.pid}_${counter}`;
}

export interface RemoteError extends Error {
  code?: string;
}

/** A spawned agent process (see agent.ts). */
export class Agent extends EventEmitter {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderr: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private alive = true;
  private readonly remotes = new Map<string, object>();

  constructor(
    readonly child: ChildProcess,
    readonly group: TestGroup,
  ) {
    super();
    this.pid = child.pid!;
    child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    child.on('message', (msg: { id?: number; ok?: boolean; value?: unknown; error?: Record<string, unknown>; event?: string; data?: unknown }) => {
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (!p) return;
        if (msg.ok) p.resolve(msg.value);
        else {
          const err = new Error(String(msg.error?.message)) as RemoteError;
          err.name = String(msg.error?.name ?? 'Error');
          if (msg.error?.code !== undefined) err.code = String(msg.error.code);
          p.reject(err);
        }
      } else if (msg.event) {
        this.emit(msg.event, msg.data);
      }
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.alive = false;
        rmSync(join(pidDir, String(this.pid)), { force: true });
        for (const p of this.pending.values()) p.reject(new Error(`agent ${this.pid} exited (${signal ?? code})`));
        this.pending.clear();
        resolve({ code, signal });
      });
    });
  }

  get isAlive(): boolean {
    return this.alive;
  }

  private send<T>(cmd: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, ...cmd });
    });
  }

  /** Starts a Runtime in the agent with the group's prefix. */
  start(options: RuntimeOptions = {}): Promise<{ processType: 'primary' | 'secondary'; lcoreId: number; pid: number }> {
    return this.send({ op: 'start', options: { filePrefix: this.group.prefix, ...options } });
  }

  /**
   * The functions of fixture module `f` run inside this agent: `agent.use(mb).open('inbox')`
   * runs `open(ctx, 'inbox')` of test/fixtures/mailbox.ts in the agent's process.
   */
  use<M>(f: Fixture<M>): Remote<M> {
    let remote = this.remotes.get(f.path);
    if (!remote) {
      const call =
        (fn: string) =>
        (...args: unknown[]) =>
          this.send({ op: 'call', module: f.path, fn, args });
      // 'then' stays undefined so that a remote is never mistaken for a promise.
      remote = new Proxy({}, { get: (_, fn) => (typeof fn === 'string' && fn !== 'then' ? call(fn) : undefined) });
      this.remotes.set(f.path, remote);
    }
    return remote as Remote<M>;
  }

  close(): Promise<void> {
    return this.send({ op: 'close' });
  }

  /** Ends the agent with process.exit(0) without closing its runtime, and waits until it is gone. */
  async exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.send({ op: 'exit' }).catch(() => undefined);
    return this.exited;
  }

  /** Resolves with the next `event` emitted by a fixture (that matches `predicate`). */
  next<T = unknown>(event: string, timeoutMs = 10_000, predicate: (d: T) => boolean = () => true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(event, onEvent);
        reject(new Error(`agent ${this.pid}: no '${event}' event within ${timeoutMs} ms`));
      }, timeoutMs);
      const onEvent = (data: T): void => {
        if (!predicate(data)) return;
        clearTimeout(timer);
        this.off(event, onEvent);
        resolve(data);
      };
      this.on(event, onEvent);
    });
  }

  /** Sends a signal by PID. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) process.kill(this.pid, signal);
  }
}

export class TestGroup {
  readonly agents: Agent[] = [];
  private readonly tracked: { child: ChildProcess; exited: Promise<void> }[] = [];

  constructor(readonly prefix: string) {}

  static create(label: string): TestGroup {
    return new TestGroup(uniquePrefix(label));
  }

  /**
   * Spawns an agent process (not yet started: call `agent.start()`), in the network namespace
   * `netns` when given (`ip netns exec`, which execs node in place: the pid stays the agent's).
   */
  async spawn(env: Record<string, string> = {}, netns?: string): Promise<Agent> {
    const inNamespace = netns === undefined ? {} : { execPath: 'ip', execArgv: ['netns', 'exec', netns, process.execPath] };
    const child = fork(agentScript, [], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, ...env }, ...inNamespace });
    const agent = new Agent(child, this);
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(agent.pid)), this.prefix);
    this.agents.push(agent);
    await Promise.race([
      agent.next('ready', 30_000),
      agent.exited.then(({ code, signal }) => {
        throw new Error(`agent ${agent.pid} exited (${signal ?? code}) before it was ready:\n${agent.stderr.join('')}`);
      }),
    ]);
    return agent;
  }

  /** Spawns an agent and starts a runtime in it. */
  async startAgent(options: RuntimeOptions = {}, netns?: string): Promise<Agent> {
    const agent = await this.spawn({}, netns);
    await agent.start(options);
    return agent;
  }

  /** Starts a primary, then `secondaries` secondaries at once: `[primary, ...secondaries]`. */
  async startMembers(secondaries: number, options: RuntimeOptions = {}): Promise<[Agent, ...Agent[]]> {
    const primary = await this.startAgent({ ...options, procType: 'primary' });
    const others = await Promise.all(Array.from({ length: secondaries }, () => this.startAgent({ ...options, procType: 'secondary' })));
    return [primary, ...others];
  }

  /**
   * Puts a process the test started itself (a script, a sample) under the group's care: cleanup
   * and the suite's safety net end it by PID like an agent.
   */
  track(child: ChildProcess): ChildProcess {
    const pid = child.pid!;
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(pid)), this.prefix);
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    }).then(() => rmSync(join(pidDir, String(pid)), { force: true }));
    this.tracked.push({ child, exited });
    return child;
  }

  /** DPDK's runtime dir of this group (`/var/run/dpdk/<prefix>` as root). */
  get runtimeDir(): string {
    return join(dpdkRuntimeRoot(), this.prefix);
  }

  /** Names of the group's hugepage files in /dev/hugepages. */
  hugepageFiles(): string[] {
    return groupHugepageFiles(this.prefix);
  }

  /**
   * What the group left on the machine: its runtime dir (when it exists) and its hugepage files.
   * `expect(g.leftovers()).toEqual([])` checks that a group went away cleanly and names what is left.
   */
  leftovers(): string[] {
    return [...(existsSync(this.runtimeDir) ? [this.runtimeDir] : []), ...this.hugepageFiles()];
  }

  /** Ends every process of the group (SIGKILL by PID) and removes its runtime dir and hugepage files. */
  async cleanup(): Promise<void> {
    for (const a of this.agents) a.kill('SIGKILL');
    for (const t of this.tracked) if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill('SIGKILL');
    await Promise.all([...this.agents.map((a) => a.exited), ...this.tracked.map((t) => t.exited)]);
    removeGroupFiles(this.prefix);
  }
}

/** True while process `pid` runs: it exists and is not a zombie (killed, not reaped yet). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** DPDK's runtime root: /var/run/dpdk as root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk. */
export function dpdkRuntimeRoot(): string {
  return process.getuid?.() === 0 ? '/var/run/dpdk' : join(process.env.XDG_RUNTIME_DIR ?? '/tmp', 'dpdk');
}

/** Names of a group's hugepage files in /dev/hugepages. */
export function groupHugepageFiles(prefix: string): string[] {
  try {
    return readdirSync('/dev/hugepages').filter((f) => f.startsWith(`${prefix}map_`));
  } catch {
    return [];
  }
}

/** Removes a group's runtime dir and hugepage files. */
export function removeGroupFiles(prefix: string): void {
  rmSync(join(dpdkRuntimeRoot(), prefix), { recursive: true, force: true });
  for (const f of groupHugepageFiles(prefix)) rmSync(join('/dev/hugepages', f), { force: true });
}
