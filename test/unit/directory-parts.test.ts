/**
 * A node's list of names split into directory messages small enough for NATS, and joined back
 * up by the receivers, and the directory those announcements fill (src/cluster/directory.ts):
 * pure, no NATS.
 */
import { describe, expect, it } from 'vitest';
import { AnnouncementAssembly, announcementParts, Directory, type NodeAnnouncement } from '../../src/cluster/directory.js';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `session-${i}`);
const announcement = (n: number): NodeAnnouncement => ({ node: 'h.1', pid: 7, host: 'h', names: names(n) });

describe('directory messages in parts', () => {
  it('a list that fits is one message as before; a longer one is parts of at most the limit, in order', () => {
    expect(announcementParts(announcement(10), 1)).toEqual([announcement(10)]);
    const parts = announcementParts(announcement(40_000), 3);
    expect(parts.length).toBeGreaterThan(1);
    for (const [i, p] of parts.entries()) {
      expect(p).toMatchObject({ node: 'h.1', pid: 7, host: 'h', part: i, parts: parts.length, round: 3 });
      expect(p.names.reduce((bytes, n) => bytes + n.length + 5, 0)).toBeLessThanOrEqual(64 * 1024);
    }
    expect(parts.flatMap((p) => p.names)).toEqual(names(40_000));
  });

  it('the receiver has the whole list once every part came, in any order; parts of an older round or repeated ones change nothing', () => {
    const assembly = new AnnouncementAssembly();
    const round1 = announcementParts(announcement(40_000), 1);
    const round2 = announcementParts({ ...announcement(40_000), names: names(40_000).reverse() }, 2);
    expect(assembly.add(round1[1]!)).toBeUndefined();
    expect(assembly.add(round2[0]!)).toBeUndefined(); // a newer round begins: round 1's parts are dropped
    expect(assembly.add(round1[0]!)).toBeUndefined(); // late
    expect(assembly.add(round2[0]!)).toBeUndefined(); // again
    let whole: NodeAnnouncement | undefined;
    for (const p of round2.slice(1).reverse()) whole = assembly.add(p);
    expect(new Set(whole!.names)).toEqual(new Set(names(40_000)));
    expect(whole!.names).toHaveLength(40_000);
    // a whole message ends whatever was begun
    expect(assembly.add(round1[0]!)).toBeUndefined();
    expect(assembly.add(announcement(2))).toEqual(announcement(2));
  });

  it('malformed parts are ignored', () => {
    const assembly = new AnnouncementAssembly();
    const base = { ...announcement(1), round: 1 };
    for (const bad of [
      { ...base, part: 0, parts: 1 },
      { ...base, part: 2, parts: 2 },
      { ...base, part: -1, parts: 2 },
      { ...base, part: 0, parts: 2.5 },
      { ...base, part: 0, parts: 2, round: 'x' as unknown as number },
      { ...base, part: 0, parts: 1e9 },
    ])
      expect(assembly.add(bad)).toBeUndefined();
  });

  it("a node's inbox travels with every part and is kept with the node; a node removed gives back every name it served", () => {
    const assembly = new AnnouncementAssembly();
    let whole: NodeAnnouncement | undefined;
    for (const p of announcementParts({ ...announcement(40_000), inbox: '_INBOX.mpbus.7.x' }, 1)) whole = assembly.add(p);
    expect(whole!.inbox).toBe('_INBOX.mpbus.7.x');
    const directory = new Directory();
    directory.announce(whole!, 1);
    directory.announce({ node: 'g.2', pid: 8, host: 'g', names: ['session-0', 'other'] }, 1);
    expect(directory.inboxOf('h.1')).toBe('_INBOX.mpbus.7.x');
    expect(directory.inboxOf('g.2')).toBeUndefined();
    const removed = directory.remove('g.2', 'process-exited')!;
    expect([...removed.names].sort()).toEqual(['other', 'session-0']);
    expect(removed.vanished).toEqual(['other']);
    expect(directory.inboxOf('g.2')).toBeUndefined();
  });
});
