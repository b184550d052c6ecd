/**
 * What a message can hold (src/bus/value-codec.ts), without DPDK: values go through the same
 * msgpackr configuration the mailboxes use and come back as docs/actors.md's table says; values
 * that cannot cross fail at the sender naming where; the actor system's `checkValues` makes a
 * one-process test fail where production would; handler errors keep code, fields and stack.
 */
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { firstValueFrom, filter } from 'rxjs';
import { ActorHandlerError, ActorSystem, InProcessHub, MpBusError, checkValue, registerClass } from '../../src/index.js';
import { decodeTree, encodeValue } from '../../src/bus/value-codec.js';
import { toWireError, fromWireError } from '../../src/actors/errors.js';

// the mailbox system's packer and unpacker (src/bus/mailbox-port.ts)
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, copyBuffers: true });
/** Across a process boundary, as the mailbox transport does it: inside the wire array. */
const cross = <T>(v: T): T => (unpackr.unpack(packr.pack([1, 'act', encodeValue(v), null])) as unknown[])[2] as T;

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}
registerClass(Point);

class QuotaError extends Error {
  constructor(readonly retryAfterMs: number) {
    super('over quota');
    this.name = 'QuotaError';
  }
}
registerClass(QuotaError);

function encodeError(v: unknown): MpBusError & { path?: string } {
  try {
    encodeValue(v);
  } catch (err) {
    return err as MpBusError & { path?: string };
  }
  throw new Error('encodeValue accepted it');
}

describe('value codec: what arrives', () => {
  it('plain data is handed to msgpack as it is (the fast path: no copy, no wrapper)', () => {
    const v = { seq: 1, body: 'x', list: [1, 'a', null, true, undefined], at: new Date(5), bytes: Buffer.from('ab') };
    expect(encodeValue(v)).toBe(v);
    expect(encodeValue('s')).toBe('s');
    const back = cross(v);
    expect(back).toEqual(v);
    expect('undefined' in back || back.list[4] === undefined).toBe(true);
    expect(cross({ u: undefined })).toHaveProperty('u', undefined);
    expect(cross(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
  });

  it('what msgpack alone would change arrives the same: -0, a `__proto__` key, an object of more than 65,535 keys', () => {
    expect(Object.is(cross(-0), -0)).toBe(true);
    const back = cross({ z: -0, list: [0, -0], m: new Map([[-0, -0]]) });
    expect([Object.is(back.z, -0), Object.is(back.list[0], 0), Object.is(back.list[1], -0), Object.is([...back.m.values()][0], -0)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(encodeValue({ zero: 0 })).toEqual({ zero: 0 }); // 0 itself stays on the fast path
    const parsed = JSON.parse('{"__proto__":{"polluted":1},"a":1}') as Record<string, unknown>;
    const proto = cross(parsed);
    expect(Object.keys(proto)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const many: Record<string, number> = {};
    for (let i = 0; i < 70_000; i++) many[`k${i}`] = i;
    const wide = cross({ many });
    expect(Object.keys(wide.many).length).toBe(70_000);
    expect(wide.many.k69999).toBe(69_999);
  });

  it('Map, Set, RegExp, BigInt, typed arrays, ArrayBuffer, DataView cross as themselves', () => {
    const v = {
      m: new Map<unknown, unknown>([
        [1, 'a'],
        [{ k: 1 }, new Set([1, 2n])],
      ]),
      re: /a+b/gi,
      small: 5n,
      big: -(2n ** 70n),
      f32: new Float32Array([1.5, -2]),
      i16: new Int16Array([-3, 4]),
      u64: new BigUint64Array([2n ** 63n]),
      ab: new Uint8Array([9, 8]).buffer,
      dv: new DataView(new Uint8Array([7]).buffer),
      d: new Date(1234),
    };
    const back = cross(v);
    expect(back.m).toBeInstanceOf(Map);
    expect([...back.m.entries()]).toEqual([
      [1, 'a'],
      [{ k: 1 }, new Set([1, 2n])],
    ]);
    expect(back.re).toEqual(/a+b/gi);
    expect(back.small).toBe(5n);
    expect(back.big).toBe(-(2n ** 70n));
    expect(back.f32).toEqual(new Float32Array([1.5, -2]));
    expect(back.i16).toEqual(new Int16Array([-3, 4]));
    expect(back.u64).toEqual(new BigUint64Array([2n ** 63n]));
    expect(back.ab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back.ab)]).toEqual([9, 8]);
    expect(back.dv.getUint8(0)).toBe(7);
    expect(back.d).toEqual(new Date(1234));
    // a typed array that views part of a larger buffer carries only its part
    const part = new Uint16Array(new Uint16Array([1, 2, 3, 4]).buffer, 2, 2);
    expect(cross(part)).toEqual(new Uint16Array([2, 3]));
  });

  it('shared references and cycles keep their shape', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { name: 'root' };
    cyclic.self = cyclic;
    const list: unknown[] = [shared];
    list.push(list);
    const m = new Map<string, unknown>();
    m.set('me', m);
    const back = cross({ a: shared, b: shared, cyclic, list, m });
    expect(back.a).toBe(back.b);
    expect(back.cyclic.self).toBe(back.cyclic);
    expect(back.list[0]).toBe(back.a);
    expect(back.list[1]).toBe(back.list);
    expect(back.m.get('me')).toBe(back.m);
  });

  it('Errors keep name, message, stack, code, custom fields and cause; MpBusError and registered errors their class', () => {
    const err = Object.assign(new TypeError('bad input', { cause: new RangeError('too big') }), { code: 'E_INPUT', detail: { field: 'qty' } });
    const back = cross(err);
    expect(back).toBeInstanceOf(TypeError);
    expect(back.message).toBe('bad input');
    expect(back.stack).toBe(err.stack);
    expect(back.code).toBe('E_INPUT');
    expect(back.detail).toEqual({ field: 'qty' });
    expect(back.cause).toBeInstanceOf(RangeError);
    const custom = Object.assign(new Error('x'), { name: 'CustomName' });
    expect(cross(custom).name).toBe('CustomName');
    const mp = cross(new MpBusError('SOME_CODE', 'boom'));
    expect(mp).toBeInstanceOf(MpBusError);
    expect(mp.code).toBe('SOME_CODE');
    const quota = cross(new QuotaError(250));
    expect(quota).toBeInstanceOf(QuotaError);
    expect(quota.retryAfterMs).toBe(250);
    expect(quota.message).toBe('over quota');
    // an AggregateError keeps its errors (not an enumerable field: they were lost)
    const many = cross(new AggregateError([new TypeError('first'), Object.assign(new Error('second'), { code: 'E2' })], 'both failed'));
    expect(many).toBeInstanceOf(AggregateError);
    expect(many.message).toBe('both failed');
    expect(many.errors.map((e: Error & { code?: string }) => [e.constructor.name, e.message, e.code])).toEqual([
      ['TypeError', 'first', undefined],
      ['Error', 'second', 'E2'],
    ]);
  });

  it('instances of a registered class arrive with their prototype (the constructor is not run)', () => {
    const back = cross({ at: new Point(3, 4), list: [new Point(0, 1)] });
    expect(back.at).toBeInstanceOf(Point);
    expect(back.at.norm()).toBe(5);
    expect(back.list[0]).toEqual(new Point(0, 1));
  });

  it('instances of registered subclasses of built-ins (Map, Set, Date, Array, typed arrays) arrive as their class, with their value and fields', () => {
    class Inventory extends Map<string, number> {
      total(): number {
        return [...this.values()].reduce((a, b) => a + b, 0);
      }
    }
    class Tags extends Set<string> {}
    class Stamp extends Date {}
    class Path extends Array<number> {}
    class Frame extends Uint8Array {
      first(): number {
        return this[0]!;
      }
    }
    for (const C of [Inventory, Tags, Stamp, Path, Frame]) registerClass(C);
    const inventory = Object.assign(
      new Inventory([
        ['tea', 2],
        ['rice', 3],
      ]),
      { shop: 'north' },
    );
    inventory.set('self-check', 0);
    const frame = Object.assign(new Frame([7, 8]), { port: 1 });
    const back = cross({
      inventory,
      tags: new Tags(['a']),
      stamp: Object.assign(new Stamp(1234), { zone: 'utc' }),
      path: Object.assign(Path.from([1, 2]), { label: 'p' }),
      frame,
      again: frame,
    });
    expect(back.inventory).toBeInstanceOf(Inventory);
    expect(back.inventory.total()).toBe(5);
    expect(back.inventory.shop).toBe('north');
    expect(back.tags).toBeInstanceOf(Tags);
    expect([...back.tags]).toEqual(['a']);
    expect(back.stamp).toBeInstanceOf(Stamp);
    expect(back.stamp.getTime()).toBe(1234);
    expect(back.stamp.zone).toBe('utc');
    expect(back.path).toBeInstanceOf(Path);
    expect(Array.isArray(back.path)).toBe(true);
    expect([...back.path]).toEqual([1, 2]);
    expect(back.path.label).toBe('p');
    expect(back.frame).toBeInstanceOf(Frame);
    expect(back.frame.first()).toBe(7);
    expect(back.frame.port).toBe(1);
    expect(back.again).toBe(back.frame);
    // a class registered here that does not extend what arrived: the bare built-in (and a warning)
    const mismatched = decodeTree([12, 'Inventory', [3, 'x'], [0, 'f', 1]]) as Set<string>;
    expect(Object.getPrototypeOf(mismatched)).toBe(Set.prototype);
    expect([...mismatched, (mismatched as unknown as { f: number }).f]).toEqual(['x', 1]);
    // fields that would hide items, and a subclass of what is no built-in, are refused
    expect(() => decodeTree([12, 'Path', [1, 5], [0, '0', 6]])).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    expect(() => decodeTree([12, 'Path', [0, 'a', 1], [0]])).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
  });
});

describe('value codec: what cannot cross fails at the sender, naming where', () => {
  it('functions, symbols, unregistered class instances, promises, weak collections', () => {
    class Unregistered {
      a = 1;
    }
    const cases: Array<[unknown, string, RegExp]> = [
      [{ items: [0, 1, 2, { cb: () => 1 }] }, 'msg.items[3].cb', /function/],
      [{ s: Symbol('tag') }, 'msg.s', /symbol/],
      [{ deep: { obj: new Unregistered() } }, 'msg.deep.obj', /instance of Unregistered.*registerClass/],
      [{ p: Promise.resolve(1) }, 'msg.p', /Promise.*await it, and send what it resolves to/],
      [{ w: new WeakMap() }, 'msg.w', /WeakMap.*its entries cannot be read; send a Map/],
      [{ w: new WeakSet() }, 'msg.w', /WeakSet.*its entries cannot be read/],
      [{ w: new WeakRef({}) }, 'msg.w', /WeakRef.*its entries cannot be read/],
      [{ 'odd key': { f() {} } }, 'msg["odd key"].f', /function/],
      [{ m: new Map([['k', { fn: Math.max }]]) }, 'msg.m[<map entry 0>].fn', /function/],
      [new Set([1, () => 2]), 'msg[<set item 1>]', /function/],
      [Object.assign(new Error('e'), { handler: () => 1 }), 'msg.handler', /function/],
      [() => 1, 'msg', /function/],
      // subclasses of built-ins need their registration too (they would arrive as the bare built-in, or not decode)
      [{ b: new (class Bytes extends Uint8Array {})(2) }, 'msg.b', /instance of Bytes \(a subclass of Uint8Array\).*registerClass/],
      [[new (class Index extends Map {})()], 'msg[0]', /instance of Index \(a subclass of Map\)/],
      [{ d: new (class Day extends Date {})() }, 'msg.d', /subclass of Date/],
      [{ fake: Object.create(Map.prototype) as object }, 'msg.fake', /instance of Map.*registerClass/],
    ];
    for (const [value, path, what] of cases) {
      const err = encodeError(value);
      expect(err, path).toBeInstanceOf(MpBusError);
      expect(err.code).toBe('ENCODE_FAILED');
      expect(err.path).toBe(path);
      expect(err.message).toMatch(what);
      expect(() => checkValue(value)).toThrow(MpBusError);
    }
  });

  it('values nested too deeply fail typed, not with a stack overflow', () => {
    let deep: unknown[] = [];
    const root = deep;
    for (let i = 0; i < 200_000; i++) {
      const next: unknown[] = [];
      deep.push(next);
      deep = next;
    }
    expect(encodeError(root).code).toBe('ENCODE_FAILED');
  });

  it('registerClass refuses what is not a class, and a name taken by another class', () => {
    expect(() => registerClass(42 as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    class Point2 {}
    expect(() => registerClass(Point2, { name: 'Point' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    registerClass(Point); // the same class again is fine
  });
});

describe('value codec: a hostile tree is a typed decode failure', () => {
  it('unknown tags, forward references, bad bigints, bad typed arrays', () => {
    for (const tree of [
      [99],
      [9, 5],
      [8, 7, [0]],
      [6, '12; drop'],
      [7, 'NoArray', Buffer.from([1])],
      [7, 'Float64Array', Buffer.from([1, 2, 3])],
      [0, 5, 'x'],
      [5, 'Error', 'm', null, null, null, 'notfields'],
    ]) {
      expect(() => decodeTree(tree), JSON.stringify(tree)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    }
    // a class this process did not register: its fields arrive as a plain object (a warning is logged)
    expect(decodeTree([8, 'NoSuchClass', [0, 'a', 1]])).toEqual({ a: 1 });
    const e = decodeTree([5, 'NoSuchError', 'm', 'stack', 'NoSuchErrorClass', null, [0, 'code', 'C']]) as Error & { code?: string };
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'NoSuchError', message: 'm', code: 'C' });
    // a field named __proto__ stays a field: it does not change the prototype
    const o = decodeTree([0, '__proto__', [0, 'polluted', 1]]) as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('handler errors on the wire', () => {
  it('keep their code and custom fields, and the stack names the process that threw', () => {
    const thrown = Object.assign(new Error('no stock'), { code: 'OUT_OF_STOCK', item: 'tea', left: 0, cb: () => 1 });
    const wire = cross(toWireError(thrown, true));
    expect(wire).toMatchObject({ name: 'Error', code: 'OUT_OF_STOCK', message: 'no stock', pid: process.pid, fields: { item: 'tea', left: 0 } });
    expect(wire.fields!.cb).toMatch(/cannot cross/);
    const err = fromWireError('shop', 'reserve', wire) as MpBusError & { item?: string; left?: number };
    expect(err.code).toBe('OUT_OF_STOCK');
    expect(err.item).toBe('tea');
    expect(err.left).toBe(0);
    expect(err.stack).toContain(`thrown by actor 'shop' in process ${process.pid}`);
    expect(err.stack).toContain('no stock');
  });

  it('keep their cause (when it can cross; else a note)', () => {
    const err = fromWireError('shop', 'reserve', cross(toWireError(new Error('no stock', { cause: new RangeError('shelf 3 empty') }), true)));
    expect(err.cause).toBeInstanceOf(RangeError);
    expect((err.cause as Error).message).toBe('shelf 3 empty');
    const noted = fromWireError('shop', 'reserve', cross(toWireError(new Error('no stock', { cause: { retry: () => 1 } }), true)));
    expect(noted.cause).toMatch(/cannot cross/);
    expect(fromWireError('shop', 'reserve', cross(toWireError({ message: 'no tea', cause: 'supplier late' }, true))).cause).toBe('supplier late');
  });

  it('a thrown plain object keeps its code, message and fields; other thrown values become a readable message', () => {
    const fromObject = fromWireError('shop', 'reserve', cross(toWireError({ code: 'OUT_OF_STOCK', message: 'no tea', item: 'tea' }, true))) as MpBusError & {
      item?: string;
    };
    expect({ code: fromObject.code, item: fromObject.item, message: fromObject.message }).toEqual({
      code: 'OUT_OF_STOCK',
      item: 'tea',
      message: "actor 'shop' failed on 'reserve': Error: no tea",
    });
    const unnamed = cross(toWireError({ detail: [1, 2] }));
    expect(unnamed).toMatchObject({ code: 'HANDLER_FAILED', message: '{ detail: [ 1, 2 ] }', fields: { detail: [1, 2] } });
    expect(cross(toWireError('out of tea'))).toMatchObject({ code: 'HANDLER_FAILED', message: 'out of tea' });
    expect(cross(toWireError(undefined))).toMatchObject({ code: 'HANDLER_FAILED', message: 'undefined' });
    expect(cross(toWireError([1]))).toMatchObject({ code: 'HANDLER_FAILED', message: '[ 1 ]' });
  });

  it("a code that is not a string stays a field; an AggregateError's errors cross", () => {
    const numeric = fromWireError('disk', 'write', cross(toWireError(Object.assign(new Error('no space'), { code: 28 }), true))) as ActorHandlerError;
    expect(numeric.code).toBe('HANDLER_FAILED');
    expect(numeric.remote.fields).toEqual({ code: 28 });
    const aggregate = fromWireError(
      'disk',
      'write',
      cross(toWireError(new AggregateError([new Error('a'), new TypeError('b')], 'both'), true)),
    ) as ActorHandlerError & {
      errors?: Error[];
    };
    expect(aggregate.errors?.map((e) => [e.constructor, e.message])).toEqual([
      [Error, 'a'],
      [TypeError, 'b'],
    ]);
  });
});

describe('checkValues: one process fails where two would', () => {
  const pair = (checkValues?: boolean): ActorSystem =>
    new ActorSystem({ transport: new InProcessHub().connect(), ...(checkValues === undefined ? {} : { checkValues }) });

  it('is on under NODE_ENV=test and refuses a bad option value', () => {
    expect(process.env.NODE_ENV).toBe('test');
    for (const v of [1, 'yes', 0])
      expect(() => pair(v as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining('checkValues') }));
  });

  it('an ask with a function in it rejects with ENCODE_FAILED naming the path; a tell becomes an encode-failed dead letter', async () => {
    const s = pair();
    const ref = await s.spawn('svc', { take: (m: unknown) => typeof m, note: (_m: unknown) => undefined });
    const err = await ref.ask('take', { items: [{ cb: () => 1 }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENCODE_FAILED', path: 'msg.items[0].cb' });
    const dead = firstValueFrom(s.deadLetters$.pipe(filter((l) => l.action === 'note')));
    ref.tell('note', { when: Symbol('now') });
    expect((await dead).reason).toBe('encode-failed');
    await s.close();
  });

  it('a reply that cannot cross fails the ask at once with ENCODE_FAILED (not a timeout)', async () => {
    const s = pair();
    const ref = await s.spawn('svc', { make: () => ({ done: () => 1 }) });
    const started = Date.now();
    const err = await ref.ask('make', undefined, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENCODE_FAILED', message: expect.stringContaining('reply.done') });
    expect(Date.now() - started).toBeLessThan(2000);
    await s.close();
  });

  it('Maps, class instances of registered classes and cycles pass; with checkValues off, anything passes by reference', async () => {
    const s = pair();
    const ref = await s.spawn('svc', { echo: (m: unknown) => m });
    const value = { m: new Map([[1, new Point(1, 1)]]) };
    expect(await ref.ask('echo', value)).toBe(value); // by reference in one process
    await s.close();
    const off = pair(false);
    const ref2 = await off.spawn('svc', { echo: (m: unknown) => m });
    const fn = (): number => 1;
    expect(await ref2.ask('echo', fn)).toBe(fn);
    await off.close();
  });
});
