/**
 * Typed contracts: `tsc` (run over test/ by `npm test` before vitest) proves that wrong message
 * and reply types are compile errors: each `@ts-expect-error` line below must BE an error, or the
 * build fails. The vitest part checks the same calls work at run time.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { Actor, ActorSystem, Handle, InProcessHub, type ActorContext, type ActorRef, type Handlers, type MsgOf } from '../src/actors/index.js';

/** The contract of a counter actor: action -> message and reply types. */
interface Counter {
  add: { msg: { n: number }; reply: number };
  reset: { msg: void; reply: void };
  name: { msg: void; reply: string };
}

/** A class actor checked against the contract with `implements Handlers<Counter>`. */
@Actor('typed-counter')
class CounterActor implements Handlers<Counter> {
  private total = 0;
  add(msg: { n: number }): number {
    return (this.total += msg.n);
  }
  reset(): void {
    this.total = 0;
  }
  name(_: void, ctx: ActorContext): string {
    return ctx.name;
  }
}

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 100 })));
});

/** Never called: the type checker reads it. */
export function compileTimeChecks(counter: ActorRef<Counter>, system: ActorSystem): void {
  counter.tell('add', { n: 1 });
  counter.tell('reset');
  void counter.ask('add', { n: 1 }, { timeoutMs: 10 }).then((total: number) => total);

  // @ts-expect-error wrong message type
  counter.tell('add', { n: 'one' });
  // @ts-expect-error missing message
  counter.tell('add');
  // @ts-expect-error unknown action
  counter.tell('multiply', { n: 2 });
  // @ts-expect-error a void action takes no message
  counter.tell('reset', 42);
  // @ts-expect-error the reply of 'add' is a number, not a string
  void counter.ask('add', { n: 1 }).then((total: string) => total);
  // @ts-expect-error wrong option name
  void counter.ask('name', undefined, { timeout: 5 });

  // A handler's context is typed by the contract too, in the object form as in the factory form.
  void system.spawn<Counter>('c0', {
    add: (m, ctx) => {
      // @ts-expect-error 'ad' is not an action of Counter
      ctx.self.tell('ad', { n: 1 });
      return m.n;
    },
    reset: () => undefined,
    name: () => 'c0',
  });

  // Function actors typed by an explicit contract: handlers are checked.
  void system.spawn<Counter>('c1', { add: (m) => m.n, reset: () => undefined, name: () => 'c1' });
  // @ts-expect-error a handler returns the wrong reply type
  void system.spawn<Counter>('c2', { add: (m) => String(m.n), reset: () => undefined, name: () => 'c2' });
  // @ts-expect-error a handler is missing
  void system.spawn<Counter>('c3', { add: (m) => m.n, reset: () => undefined });

  // A handler whose message parameter has no type takes nothing (it was `any`: every send compiled).
  void system.spawn('unannotated', { add: (n) => [n], ping: () => 'pong' }).then((ref) => {
    // @ts-expect-error the error asks for the handler's message type
    ref.tell('add', 1);
    void ref.ask('ping').then((reply: string) => reply);
  });

  // Class actors spawned with a contract: their methods named after its actions are checked.
  void system.spawn<Counter>(CounterActor).then((ref: ActorRef<Counter>) => ref);
  void system.spawn<Counter>(MappedCounter);
  void system.spawn(TextAdder).then((ref: ActorRef) => ref);
  // @ts-expect-error the class's 'add' returns a string where Counter says number
  void system.spawn<Counter>(WrongCounter);
  // @ts-expect-error the class's 'add' takes a string where Counter sends { n }
  void system.spawn<Counter>(TextAdder, { name: 'text' });
  void system.spawn<Counter>('parent', (ctx) => {
    // @ts-expect-error a child class is checked the same way
    void ctx.spawn<Counter>(TextAdder);
    return { add: (m) => m.n, reset: () => undefined, name: () => 'parent' };
  });

  // Function actors typed by their handlers' own signatures.
  void system.spawn('inferred', { double: (n: number) => n * 2 }).then((ref) => {
    void ref.ask('double', 2).then((v: number) => v);
    // @ts-expect-error inferred message type is number
    ref.tell('double', 'two');
  });
}

/** A contract with one of Counter's actions. */
interface Adder {
  add: { msg: { n: number }; reply: number };
}

/** Never called: refs of different contracts are different types; an untyped ref goes anywhere. */
export function refAssignability(counter: ActorRef<Counter>, adder: ActorRef<Adder>, untyped: ActorRef, system: ActorSystem): void {
  const anyRefs: ActorRef[] = [counter, adder];
  const fewerActions: ActorRef<Adder> = counter;
  const fromUntyped: ActorRef<Counter> = untyped;
  const byReturnType: ActorRef<Counter> = system.ref('typed-counter');
  // @ts-expect-error Adder lacks Counter's reset and name
  const moreActions: ActorRef<Counter> = adder;
  // @ts-expect-error 'add' takes a number there, an object here
  const otherMessage: ActorRef<{ add: { msg: number; reply: number } }> = counter;
  // @ts-expect-error nothing in common
  const unrelated: ActorRef<{ greet: { msg: string; reply: string } }> = counter;
  const anyContract: ActorRef<unknown> = counter;
  // A ref fits where its actor takes every message the other contract sends, and replies what it accepts.
  const anyCurrency = system.ref<{ convert: { msg: string; reply: number } }>('fx');
  const onlyEur = system.ref<{ convert: { msg: 'eur'; reply: number } }>('fx-eur');
  const sendsEurOnly: ActorRef<{ convert: { msg: 'eur'; reply: number } }> = anyCurrency;
  // @ts-expect-error this actor takes only 'eur': a ref that sends any string would reach it
  const sendsAnyString: ActorRef<{ convert: { msg: string; reply: number } }> = onlyEur;
  const acceptsWiderReply: ActorRef<{ convert: { msg: 'eur'; reply: number | string } }> = onlyEur;
  void [anyRefs, fewerActions, fromUntyped, byReturnType, moreActions, otherMessage, unrelated, anyContract, sendsEurOnly, sendsAnyString, acceptsWiderReply];
}

/** A contract of jobs keyed by user. */
interface Jobs {
  run: { msg: { user: string; n: number }; reply: number };
  cancel: { msg: { user: string }; reply: void };
}

/** Never called: a router's key function takes its contract's messages and actions. */
export function routerKeys(system: ActorSystem, worker: ActorRef<Jobs>, other: ActorRef<Counter>): void {
  system.router<Jobs>('jobs', { strategy: 'consistent-hash', workers: ['w1', worker] as const, key: (msg, action) => `${action}:${msg.user}` });
  // the message narrowed by its action
  system.router<Jobs>('by-n', { strategy: 'consistent-hash', key: (msg, action) => (action === 'run' ? String(msg.n) : msg.user) });
  // @ts-expect-error a worker of another contract
  system.router<Jobs>('mixed', { workers: [other] });
  system.router('untyped', { strategy: 'consistent-hash', key: (msg: { id: string }) => msg.id });
  // @ts-expect-error no action of Jobs has a field 'id'
  system.router<Jobs>('wrong', { strategy: 'consistent-hash', key: (msg) => msg.id });
  // @ts-expect-error 'stop' is not an action of Jobs
  system.router<Jobs>('wrong2', { strategy: 'consistent-hash', key: (msg, action) => (action === 'stop' ? '' : msg.user) });
}

/** A contract with an action only told (no `reply`), and one written as a method, not `{ msg; reply }`. */
interface Logger {
  log: { msg: string };
}
interface MethodStyle {
  square(n: number): number;
}

/** Never called: a tell-only action needs no `reply`; a method-style action fails with an error that shows the form. */
export function contractShapes(system: ActorSystem, logger: ActorRef<Logger>, squares: ActorRef<MethodStyle>): void {
  void system.spawn<Logger>('logger', { log: (line) => void line.length });
  logger.tell('log', 'hello');
  void logger.ask('log', 'hello').then((answer: void) => answer);
  // @ts-expect-error a method is not an action: the parameter's type names the { msg; reply } form
  squares.tell('square', 3);
  // @ts-expect-error the same for a handler of it
  void system.spawn<MethodStyle>('squares', { square: (n: number) => n * n });
  const shown: keyof MsgOf<MethodStyle, 'square'> extends `mpbus: a contract maps each action to { msg: <message>; reply: <reply> }${string}` ? true : false =
    true;
  void shown;
}

/** A class that claims the contract but gets a handler wrong. */
class WrongCounter implements Handlers<Counter> {
  // @ts-expect-error 'add' returns a string where the contract says number
  add(msg: { n: number }): string {
    return String(msg.n);
  }
  reset(): void {}
  name(): string {
    return '';
  }
}
void WrongCounter;

/** A class whose 'add' takes text: not a Counter. */
class TextAdder {
  add(text: string): string {
    return text;
  }
}

/** Handlers mapped by `@Handle` from methods of other names: those are not checked against a contract. */
class MappedCounter {
  @Handle('add')
  plus(msg: { n: number }): number {
    return msg.n;
  }
}

describe('typed contracts', () => {
  it('a typed ref talks to a class actor checked by its contract', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    systems.push(system);
    await system.spawn(CounterActor);
    const counter = system.ref<Counter>('typed-counter');
    counter.tell('add', { n: 2 });
    const total = await counter.ask('add', { n: 3 });
    expectTypeOf(total).toEqualTypeOf<number>();
    expect(total).toBe(5);
    await counter.ask('reset');
    expect(await counter.ask('add', { n: 1 })).toBe(1);
    expect(await counter.ask('name')).toBe('typed-counter');
  });

  it('a function actor typed by its handlers', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    systems.push(system);
    const doubler = await system.spawn('doubler', { double: (n: number) => n * 2, hello: async () => 'hi' });
    expect(await doubler.ask('double', 21)).toBe(42);
    const hello = await doubler.ask('hello');
    expectTypeOf(hello).toEqualTypeOf<string>();
    expect(hello).toBe('hi');
  });
});
