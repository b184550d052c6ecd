/**
 * Errors that settle an ask from a timer or from what the transport delivered are made without
 * a stack of their own (src/errors.ts, `withoutStack`): their stack would name only mpbus's frames.
 */
import { describe, expect, it } from 'vitest';
import { ActorSystem, AskTimeoutError, InProcessHub } from '../../src/actors/index.js';
import { MpBusError, withoutStack } from '../../src/errors.js';

describe('withoutStack', () => {
  it('makes the error with its name and message only, and puts the stack trace limit back, also when making it throws', () => {
    const before = Error.stackTraceLimit;
    const err = withoutStack(() => new MpBusError('X', 'no frames'));
    expect(err.stack).toBe('MpBusError: no frames');
    expect(Error.stackTraceLimit).toBe(before);
    expect(() =>
      withoutStack(() => {
        throw new Error('while making it');
      }),
    ).toThrow('while making it');
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('after').stack!.split('\n').length).toBeGreaterThan(1);
  });

  it("an ask's timeout, made by a timer, carries no stack of mpbus's frames; a handler's error still carries the handler's stack", async () => {
    const hub = new InProcessHub();
    const system = new ActorSystem({ transport: hub.connect() });
    try {
      await system.spawn('slow', { wait: () => new Promise(() => undefined) });
      await system.spawn('failing', { fail: () => Promise.reject(new Error('no stock')) });
      const timedOut = await system
        .ref('slow')
        .ask('wait', null, { timeoutMs: 20 })
        .catch((e: unknown) => e);
      expect(timedOut).toBeInstanceOf(AskTimeoutError);
      expect((timedOut as Error).stack!.split('\n')).toHaveLength(1);
      const failed = (await system
        .ref('failing')
        .ask('fail', null)
        .catch((e: unknown) => e)) as Error;
      expect(failed.stack).toContain('no stock');
      expect(failed.stack).toContain("thrown by actor 'failing'");
    } finally {
      await system.close({ timeoutMs: 0 });
    }
  });
});
