/**
 * {@link Directory}: which actor names the other nodes of the cluster serve, learnt from their
 * heartbeats. A node is a process that joined the cluster; each heartbeat carries the whole list
 * of the names it serves, so a lost heartbeat costs nothing and a node that stops sending them
 * (killed, or cut off from NATS) is forgotten after `nodeTimeoutMs`. A list too long for one
 * NATS message goes in parts ({@link announcementParts}), joined again by the receivers
 * ({@link AnnouncementAssembly}).
 */

/** What one heartbeat says. */
export interface NodeAnnouncement {
  node: string;
  pid: number;
  host: string;
  names: string[];
  /**
   * The node's inbox prefix (the subject its answers come to): an asker publishes to it to learn
   * whether the node's NATS connection is still open (no responders: it is not). Absent from
   * nodes that do not offer it; they are then noticed gone by their silence only.
   */
  inbox?: string | undefined;
  /**
   * The node takes asks on its own subject for each name it serves (`<name's subject>.@<node as
   * a subject token>`) besides the name's queue group: askers then choose among the hosts.
   */
  direct?: boolean | undefined;
}

/**
 * Bytes of names one directory message carries at most (NATS servers take 1 MiB per message by
 * default, and some are set lower): a node serving more names sends its list in parts.
 */
export const NAMES_PER_MESSAGE_BYTES = 64 * 1024;

/** A directory message: a whole announcement, or part `part` (from 0) of `parts` of the one numbered `round`. */
export interface AnnouncementMessage extends NodeAnnouncement {
  part?: number;
  parts?: number;
  round?: number;
}

/** `a` as directory messages of at most about `maxBytes` of names each (one message when they fit). */
export function announcementParts(a: NodeAnnouncement, round: number, maxBytes = NAMES_PER_MESSAGE_BYTES): AnnouncementMessage[] {
  const chunks: string[][] = [[]];
  let bytes = 0;
  for (const name of a.names) {
    const size = Buffer.byteLength(name) + 5; // (msgpack's string header, at most 5 bytes)
    if (bytes + size > maxBytes && chunks.at(-1)!.length > 0) {
      chunks.push([]);
      bytes = 0;
    }
    chunks.at(-1)!.push(name);
    bytes += size;
  }
  if (chunks.length === 1) return [a];
  return chunks.map((names, part) => ({ ...a, names, part, parts: chunks.length, round }));
}

/** The parts of each node's latest announcement heard so far, joined once all of them came. */
export class AnnouncementAssembly {
  private readonly pending = new Map<string, { round: number; parts: number; got: Set<number>; names: string[] }>();

  /**
   * The whole announcement `m` is, or completes; undefined while parts of it are missing (or `m`
   * is a part of an older round than one already begun, or malformed).
   */
  add(m: AnnouncementMessage): NodeAnnouncement | undefined {
    if (m.parts === undefined) {
      this.pending.delete(m.node);
      return m;
    }
    const { part, parts, round } = m;
    if (!Number.isInteger(parts) || parts < 2 || parts > 65_536 || !Number.isInteger(part) || part! < 0 || part! >= parts || !Number.isInteger(round))
      return undefined;
    let p = this.pending.get(m.node);
    if (p !== undefined && p.round > round!) return undefined; // a late part of an older round
    if (p === undefined || p.round !== round || p.parts !== parts) {
      p = { round: round!, parts, got: new Set(), names: [] };
      this.pending.set(m.node, p);
    }
    if (p.got.has(part!)) return undefined;
    p.got.add(part!);
    for (const name of m.names) p.names.push(name);
    if (p.got.size < parts) return undefined;
    this.pending.delete(m.node);
    return { node: m.node, pid: m.pid, host: m.host, names: p.names, inbox: m.inbox, direct: m.direct };
  }

  /** Drops what was heard of `node` (it left). */
  forget(node: string): void {
    this.pending.delete(node);
  }
}

interface NodeEntry {
  pid: number;
  host: string;
  names: Set<string>;
  lastSeen: number;
  inbox: string | undefined;
}

/** A node that left: how, and the names no other node serves any more. */
export interface NodeRemoved {
  node: string;
  reason: 'stopped' | 'process-exited';
  /** Every name it served. */
  names: ReadonlySet<string>;
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
      entry = { pid: a.pid, host: a.host, names: new Set(), lastSeen: now, inbox: undefined };
      this.nodes.set(a.node, entry);
    }
    entry.lastSeen = now;
    entry.inbox = a.inbox;
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
    return { node, reason, names: entry.names, vanished };
  }

  /** Counts `node`, when known, as heard from at `now` (a part of its announcement came). */
  touch(node: string, now: number): void {
    const entry = this.nodes.get(node);
    if (entry) entry.lastSeen = now;
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

  /** A node's inbox prefix, when it announced one (see {@link NodeAnnouncement.inbox}). */
  inboxOf(node: string): string | undefined {
    return this.nodes.get(node)?.inbox;
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
