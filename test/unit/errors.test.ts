/** MpBusError as it prints (its own fields are what it says, no `errno: undefined`), and thrown values read as text. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, MpBusError } from '../../src/index.js';
import { describeThrown } from '../../src/errors.js';
import { toWireError } from '../../src/actors/errors.js';

describe('MpBusError', () => {
  it('has an errno field only when one was given', () => {
    expect(Object.keys(new MpBusError('NO_PRIMARY', 'no primary'))).not.toContain('errno');
    expect(inspect(new MpBusError('NO_PRIMARY', 'no primary'))).not.toContain('errno');
    expect(new MpBusError('EEXIST', 'exists', { errno: 17 })).toMatchObject({ code: 'EEXIST', errno: 17 });
  });
});

describe('what a thrown value says', () => {
  it('reads any thrown value as text, one without a prototype included', () => {
    expect(describeThrown(new Error('boom'))).toBe('boom');
    expect(describeThrown('plain')).toBe('plain');
    expect(describeThrown(42)).toBe('42');
    expect(describeThrown(undefined)).toBe('undefined');
    expect(describeThrown(Object.assign(Object.create(null) as object, { code: 'E_X', item: 7 }))).toContain("code: 'E_X'");
    const trap = new Proxy(
      {},
      {
        get: () => {
          throw new Error('trap');
        },
      },
    );
    expect(describeThrown(trap)).toBe('a thrown value that could not be read');
  });

  it('a thrown plain object keeps its name on the wire, beside its code, message and fields', () => {
    const wire = toWireError({ name: 'OutOfStock', code: 'OUT_OF_STOCK', message: 'no tea', item: 'tea' }, true);
    expect(wire).toMatchObject({ name: 'OutOfStock', code: 'OUT_OF_STOCK', message: 'no tea', fields: { item: 'tea' }, thrown: true });
    expect(toWireError({ code: 'X', message: 'm' }).name).toBe('Error');
  });

  it('a handler that throws an object without a prototype fails its ask with its code; its process goes on', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    const failed: string[] = [];
    system.events$.subscribe((e) => {
      if (e.type === 'failed') failed.push(e.error);
    });
    const ref = await system.spawn(
      'nullproto',
      {
        boom: (): never => {
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a user's handler may throw
          throw Object.assign(Object.create(null) as object, { code: 'E_NULLPROTO', item: 7 });
        },
        ping: () => 'pong',
      },
      { supervision: { strategy: 'resume' } },
    );
    await expect(ref.ask('boom')).rejects.toMatchObject({ code: 'E_NULLPROTO' });
    expect(await ref.ask('ping')).toBe('pong');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('E_NULLPROTO');
    await system.close();
  });
});
