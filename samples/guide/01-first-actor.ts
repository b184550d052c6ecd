// Your first actor: a function actor in one process.
import { ActorSystem } from '../../src/index.js';

const system = new ActorSystem();

let total = 0;
const counter = await system.spawn('counter', {
  add: (n: number) => (total += n), // a handler: message in, reply out
  total: () => total,
});

counter.tell('add', 2); // fire and forget
counter.tell('add', 3);
console.log('total =', await counter.ask('total')); // 5: messages are handled one at a time, in order

await system.close();
