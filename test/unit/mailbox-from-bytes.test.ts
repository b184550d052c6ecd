/**
 * A mailbox's `consume(next, { fromBytes })` (src/bus/local-mailbox.ts): the receive loop may
 * offer its reader a message's bytes only while that consumer is the mailbox's only subscriber;
 * another subscriber, an unsubscribe or a close takes the reader away, and the messages go
 * through decoding to every subscriber again.
 */
import { describe, expect, it } from 'vitest';
import { Mailbox, type BytesReader, type MailboxHost } from '../../src/bus/local-mailbox.js';

const host: MailboxHost = {
  setHold: () => undefined,
  adjustDepth: () => undefined,
  nativeDepth: () => 0,
  closeBox: () => undefined,
  reportError: () => undefined,
  burstOf: () => {
    throw new Error('not used');
  },
  takeValues: () => [],
};

const mailbox = (): Mailbox<number> => new Mailbox<number>(host, 'replies', { slot: 1, generation: 1, id: 7 }, 64);
const reader: BytesReader = () => true;

describe('Mailbox consume with fromBytes', () => {
  it('offers the reader while its consumer is the only subscriber', () => {
    const box = mailbox();
    const got: number[] = [];
    const consumer = box.consume((v) => got.push(v), { fromBytes: reader });
    expect(box.fromBytes).toBe(reader);
    box.deliver(1); // what the reader did not take is still delivered
    expect(got).toEqual([1]);
    consumer.unsubscribe();
    expect(box.fromBytes).toBeUndefined();
  });

  it('takes the reader away while another subscriber is there, and gives it back when it leaves', () => {
    const box = mailbox();
    const first: number[] = [];
    const other: number[] = [];
    box.consume((v) => first.push(v), { fromBytes: reader });
    const sub = box.messages$.subscribe((v) => other.push(v));
    expect(box.fromBytes).toBeUndefined();
    box.deliver(2);
    expect([first, other]).toEqual([[2], [2]]);
    sub.unsubscribe();
    expect(box.fromBytes).toBe(reader);
  });

  it('has no reader for a consumer without one, nor after a close', () => {
    const plain = mailbox();
    plain.consume(() => undefined);
    expect(plain.fromBytes).toBeUndefined();
    const box = mailbox();
    box.consume(() => undefined, { fromBytes: reader });
    box.close();
    expect(box.fromBytes).toBeUndefined();
  });
});
