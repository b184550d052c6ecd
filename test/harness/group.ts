/**
 * Test groups: each owns a unique --file-prefix, spawns real agent processes, and on cleanup
 * ends every process it spawned (by PID) and removes the group's runtime dir and hugepage files,
 * even when a test failed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeOptions } from '../../src/index.js';
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

  constructor(readonly child: ChildProcess, readonly group: TestGroup) {
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

  /** Runs `fn(ctx, ...args)` from a compiled fixture module inside the agent. */
  call<T = unknown>(module: string, fn: string, ...args: unknown[]): Promise<T> {
    return this.send<T>({ op: 'call', module, fn, args });
  }

  close(): Promise<void> {
    return this.send({ op: 'close' });
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

  constructor(readonly prefix: string) {}

  static create(label: string): TestGroup {
    return new TestGroup(uniquePrefix(label));
  }

  /** Spawns an agent process (not yet started: call `agent.start()`). */
  async spawn(env: Record<string, string> = {}): Promise<Agent> {
    const child = fork(agentScript, [], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, ...env } });
    const agent = new Agent(child, this);
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(join(pidDir, String(agent.pid)), this.prefix);
    this.agents.push(agent);
    await agent.next('ready');
    return agent;
  }

  /** Spawns an agent and starts a runtime in it. */
  async startAgent(options: RuntimeOptions = {}): Promise<Agent> {
    const agent = await this.spawn();
    await agent.start(options);
    return agent;
  }

  /** Ends every process of the group (SIGKILL by PID) and removes its runtime dir and hugepage files. */
  async cleanup(): Promise<void> {
    for (const a of this.agents) a.kill('SIGKILL');
    await Promise.all(this.agents.map((a) => a.exited));
    removeGroupFiles(this.prefix);
  }
}

/** Removes a group's runtime dir and hugepage files. */
export function removeGroupFiles(prefix: string): void {
  rmSync(join('/var/run/dpdk', prefix), { recursive: true, force: true });
  try {
    for (const f of readdirSync('/dev/hugepages')) if (f.startsWith(`${prefix}map_`)) rmSync(join('/dev/hugepages', f), { force: true });
  } catch {
    // no hugetlbfs mount: nothing to remove
  }
}
