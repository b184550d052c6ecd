/** Test helpers for interrupt tests: every event an agent emitted, kept so no wait misses one. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { LinkState } from '../src/index.js';
import type { Agent } from './harness/group.js';
import { sleep } from './harness/wait.js';

/** What the followLink fixture emits. */
export interface LinkReport {
  key: string;
  link: LinkState;
}

/** Everything an agent's fixtures emitted, kept from the start, so no wait can miss an event. */
export class Events {
  readonly log: { event: string; data: unknown }[] = [];
  constructor(agent: Agent, names: string[]) {
    for (const event of names) agent.on(event, (data: unknown) => this.log.push({ event, data }));
  }

  of<T>(event: string, predicate: (d: T) => boolean = () => true): T[] {
    return this.log.filter((e) => e.event === event && predicate(e.data as T)).map((e) => e.data as T);
  }

  /** The first `event` (ever emitted) matching `predicate`, waiting for it if needed. */
  async wait<T>(event: string, predicate: (d: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of<T>(event, predicate)[0];
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no '${event}' event matching the test within ${timeoutMs} ms; seen: ${JSON.stringify(this.log.slice(-10))}`);
      await sleep(20);
    }
  }
}

export function events(agent: Agent): Events {
  return new Events(agent, ['intr', 'link', 'link-error', 'lsc', 'lsc-error', 'port', 'alarm', 'alarm-error', 'lost']);
}

export function linkOf(ev: Events, key: string, status?: LinkState['status']): Promise<LinkReport> {
  return ev.wait<LinkReport>('link', (d) => d.key === key && (status === undefined || d.link.status === status));
}

/** Why the tap test cannot run here, or undefined when it can. */
export function tapUnavailable(): string | undefined {
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (no tun module): net_tap cannot create its interface';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "the 'ip' command is missing: the test toggles the tap interface with it";
  }
  if (process.getuid?.() !== 0) return 'net_tap needs root (CAP_NET_ADMIN) to create its interface';
  return undefined;
}
