/**
 * {@link Directory}: which actor names the other nodes of the cluster serve, learnt from their
 * heartbeats. A node is a process that joined the cluster; each heartbeat carries the whole list
 * of the names it serves, so a lost heartbeat costs nothing and a node that stops sending them
 * (killed, or cut off from NATS) is forgotten after `nodeTimeoutMs`.
 */

/** What one heartbeat says. */
export interface NodeAnnouncement {
  node: string;
  pid: number;
  host: string;
  names: string[];
}

interface NodeEntry {
  pid: number;
  host: string;
  names: Set<string>;
  lastSeen: number;
}

/** A node that left: how, and the names no other node serves any more. */
export interface NodeRemoved {
  node: string;
  reason: 'stopped' | 'process-exited';
  /** Names that have no holder left. */
  vanished: string[];
}

export class Directory {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly holders = new Map<string, Set<string>>();

  /**
   * Takes in a heartbeat; returns the names that no node serves any more (the node dropped
   * them and no one else holds them).
   */
  announce(a: NodeAnnouncement, now: number): string[] {
    let entry = this.nodes.get(a.node);
    if (!entry) {
      entry = { pid: a.pid, host: a.host, names: new Set(), lastSeen: now };
      this.nodes.set(a.node, entry);
    }
    entry.lastSeen = now;
    const next = new Set(a.names);
    const vanished: string[] = [];
    for (const name of entry.names) if (!next.has(name) && this.drop(name, a.node)) vanished.push(name);
    for (const name of next) {
      let set = this.holders.get(name);
      if (!set) this.holders.set(name, (set = new Set()));
      set.add(a.node);
    }
    entry.names = next;
    return vanished;
  }

  /** Forgets a node (it said goodbye, or went silent). */
  remove(node: string, reason: NodeRemoved['reason']): NodeRemoved | undefined {
    const entry = this.nodes.get(node);
    if (!entry) return undefined;
    this.nodes.delete(node);
    const vanished: string[] = [];
    for (const name of entry.names) if (this.drop(name, node)) vanished.push(name);
    return { node, reason, vanished };
  }

  /** Counts every node as heard from at `now` (after this node's own outage: a fresh grace period). */
  touchAll(now: number): void {
    for (const entry of this.nodes.values()) entry.lastSeen = now;
  }

  /** Nodes not heard from since `before`. */
  silentSince(before: number): string[] {
    return [...this.nodes].filter(([, e]) => e.lastSeen < before).map(([node]) => node);
  }

  /** Nodes serving `name` now. */
  holdersOf(name: string): string[] {
    return [...(this.holders.get(name) ?? [])];
  }

  has(name: string): boolean {
    return (this.holders.get(name)?.size ?? 0) > 0;
  }

  knows(node: string): boolean {
    return this.nodes.has(node);
  }

  /** Pid of a node's process (meaningful on that node's host only). */
  pidOf(node: string): number | undefined {
    return this.nodes.get(node)?.pid;
  }

  /** Every node now, with its host and names. */
  snapshot(): Array<{ node: string; pid: number; host: string; names: string[] }> {
    return [...this.nodes].map(([node, e]) => ({ node, pid: e.pid, host: e.host, names: [...e.names].sort() }));
  }

  /** Removes `node` as a holder of `name`; true when no holder is left. */
  private drop(name: string, node: string): boolean {
    const set = this.holders.get(name);
    if (!set) return false;
    set.delete(node);
    if (set.size > 0) return false;
    this.holders.delete(name);
    return true;
  }
}
