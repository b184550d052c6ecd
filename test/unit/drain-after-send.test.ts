/**
 * The receive loop's drains right after sends (src/bus/mailbox-pump.ts, `drainAfterSend`), on a
 * stand-in for the native mailbox functions (no DPDK): a drain that finds what the sends brought
 * may lead to another at once, but the event loop still turns, and nothing drains for nothing.
 */
import { describe, expect, it } from 'vitest';
import { MailboxPump } from '../../src/bus/mailbox-pump.js';
import type { MailboxPort } from '../../src/bus/mailbox-port.js';
import { DrainRow, MessageCodec } from '../../src/native/mailbox.js';

/**
 * A port whose inbox holds `inbox.waiting` messages for mailbox 1 (raw bytes); each delivery is
 * handed to `onMessage`. Drains take what waits (up to a burst) and never wait themselves.
 */
function fakePort(onMessage: () => void): { port: MailboxPort; inbox: { waiting: number; drains: number } } {
  const inbox = { waiting: 0, drains: 0 };
  const out = new Uint32Array(DrainRow.burst * DrainRow.words);
  const native = {
    mbxPoolInfo: () => ({ firstObject: 64n, poolBase: 0n, stride: 2048, count: 2 }),
    mbxDrain: (): number => {
      inbox.drains++;
      const n = Math.min(inbox.waiting, DrainRow.burst);
      for (let i = 0; i < n; i++) out.set([1, 64, 8, MessageCodec.raw], i * DrainRow.words);
      inbox.waiting -= n;
      return n;
    },
    mbxCrowded: () => false,
    mbxPark: () => false,
  };
  const box = { closed: false, burst: undefined, name: 'box', deliver: onMessage };
  const port = {
    native,
    att: { out, burst: DrainRow.burst, onWake: () => undefined },
    pool: Buffer.alloc(4096),
    boxes: new Map([[1, box]]),
    unpackr: undefined,
    sends: 0,
    reportError: (err: Error) => {
      throw err;
    },
  };
  return { port: port as unknown as MailboxPort, inbox };
}

describe('MailboxPump.drainAfterSend', () => {
  it('a drain after sends that finds their answers may lead to another at once, and the event loop still turns', async () => {
    let delivered = 0;
    // An actor that answers each message at the end of the turn (a microtask, as the actor
    // layer's staged sends go) and whose peer answers back at once: every drain after a send
    // finds a message, which is answered, and so on.
    const { port, inbox } = fakePort(() => {
      delivered++;
      void Promise.resolve().then(() => {
        port.sends++;
        if (delivered < 200_000) inbox.waiting++; // (then the peer stops, whatever happened)
        pump.drainAfterSend();
      });
    });
    const pump = new MailboxPump(port, 0, 1000);
    inbox.waiting = 1;
    pump.start();
    // Turns of the event loop while it runs, and the most messages delivered between two turns.
    let turns = 0;
    let mostBetweenTurns = 0;
    let deliveredAtTurn = 0;
    await new Promise<void>((resolve) => {
      const turn = (): void => {
        turns++;
        mostBetweenTurns = Math.max(mostBetweenTurns, delivered - deliveredAtTurn);
        deliveredAtTurn = delivered;
        if (delivered < 200_000) setImmediate(turn);
        else resolve();
      };
      setImmediate(turn);
    });
    pump.stop();
    // More than one message per turn of the event loop: the drains after sends did run...
    expect(delivered / turns).toBeGreaterThan(2);
    // ...but the event loop turned all along (0.5 ms of such drains at most, here ~1 µs each).
    expect(turns).toBeGreaterThan(10);
    expect(mostBetweenTurns).toBeLessThan(100_000);
  });

  it('no drain after sends when nothing was sent since the last turn, and the chain ends at a drain that finds nothing', async () => {
    const { port, inbox } = fakePort(() => undefined);
    const pump = new MailboxPump(port, 0, 1000);
    pump.start();
    await new Promise((resolve) => setImmediate(resolve));
    const drains = inbox.drains;
    pump.drainAfterSend(); // nothing sent
    expect(inbox.drains).toBe(drains);
    port.sends++;
    pump.drainAfterSend(); // sent: one drain, which finds nothing
    expect(inbox.drains).toBe(drains + 1);
    pump.drainAfterSend(); // nothing sent since that drain's turn
    expect(inbox.drains).toBe(drains + 1);
    pump.stop();
  });
});
