// A class actor with a typed contract and injected dependencies.
import 'reflect-metadata'; // before tsyringe, which needs it loaded when it is imported
import { injectable } from 'tsyringe';
import { Actor, ActorContext, ActorSystem, Handle, type Handlers } from '../../src/index.js';

/** The contract: action -> message and reply types. Refs typed by it are checked by tsc. */
interface Greeter {
  greet: { msg: { who: string }; reply: string };
  greeted: { msg: void; reply: number };
}

@injectable()
class Clock {
  now(): string {
    return new Date().toISOString().slice(11, 19);
  }
}

@Actor('greeter')
class GreeterActor implements Handlers<Greeter> {
  private count = 0;
  constructor(
    private readonly clock: Clock, // from the system's tsyringe container
    private readonly ctx: ActorContext, // this actor's context
  ) {}

  preStart(): void {
    this.ctx.log.info('greeter starting');
  }

  @Handle('greet')
  greet(msg: { who: string }): string {
    this.count++;
    return `hello ${msg.who}, it is ${this.clock.now()} (from ${this.ctx.name})`;
  }

  greeted(): number {
    return this.count; // a method named after the action needs no @Handle
  }

  postStop(): void {
    console.log(`greeter stopped after ${this.count} greetings`);
  }
}

const system = new ActorSystem();
await system.spawn(GreeterActor);
const greeter = system.ref<Greeter>('greeter');
console.log(await greeter.ask('greet', { who: 'Ada' }, { timeoutMs: 1000 }));
console.log('greeted', await greeter.ask('greeted'), 'time(s)');
// greeter.tell('greet', { who: 42 });  <- a compile error: the contract says who is a string
await system.stop(greeter);
await system.close();
