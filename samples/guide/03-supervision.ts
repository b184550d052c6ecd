// When handlers fail: supervision, events and dead letters.
import { ActorSystem, AskTimeoutError } from '../../src/index.js';

const system = new ActorSystem();
system.events$.subscribe((e) => console.log('event:', e.type, e.type === 'deadLetter' ? e.letter.to : 'name' in e ? e.name : ''));
system.deadLetters$.subscribe((l) => console.log(`dead letter: '${l.action}' to '${l.to}' (${l.reason})`));

// A factory of handlers: called again on each restart, so state starts fresh.
const flaky = await system.spawn(
  'flaky',
  () => {
    let calls = 0;
    return {
      call: () => ++calls,
      crash: (): number => {
        throw new Error('crashed on purpose');
      },
      hang: () => new Promise<void>(() => undefined),
    };
  },
  { supervision: { strategy: 'restart', maxRestarts: 3, withinMs: 10_000, backoffMs: 10 } },
);

await flaky.ask('call');
await flaky.ask('call');
await flaky.ask('crash').catch((err: Error) => console.log('the asker gets the error:', err.message));
console.log('after the restart, calls =', await flaky.ask('call')); // 1: a fresh instance

await flaky.ask('hang', undefined, { timeoutMs: 50 }).catch((err) => console.log('timed out:', err instanceof AskTimeoutError));
system.ref('nobody').tell('hello', 'is anyone there?'); // a dead letter
await system.close({ timeoutMs: 100 });
