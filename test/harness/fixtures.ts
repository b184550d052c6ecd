/**
 * Typed fixtures: the modules an agent can run functions of (test/fixtures), by name, each with
 * the type of its exports, so that a test calls `agent.use(mb).open('inbox', 16)` and a wrong
 * function name or argument is a compile error instead of a "fixture has no function" at run
 * time. Only types are imported here: the fixtures themselves load in the agent processes.
 */
import type { AgentContext } from './agent.js';
import { fixturePath } from './paths.js';
import type * as actors from '../fixtures/actors.js';
import type * as cluster from '../fixtures/cluster.js';
import type * as cpeers from '../fixtures/cpeers.js';
import type * as interrupts from '../fixtures/interrupts.js';
import type * as mailbox from '../fixtures/mailbox.js';
import type * as mp from '../fixtures/mp.js';
import type * as ownership from '../fixtures/ownership.js';
import type * as runtime from '../fixtures/runtime.js';
import type * as shm from '../fixtures/shm.js';
import type * as tracing from '../fixtures/tracing.js';
import type * as values from '../fixtures/values.js';

/** The fixture modules agents run, by file name under test/fixtures. */
export interface AgentFixtures {
  actors: typeof actors;
  cluster: typeof cluster;
  cpeers: typeof cpeers;
  interrupts: typeof interrupts;
  mailbox: typeof mailbox;
  mp: typeof mp;
  ownership: typeof ownership;
  runtime: typeof runtime;
  shm: typeof shm;
  tracing: typeof tracing;
  values: typeof values;
}

/** A fixture function as the agent calls it: the agent's context first, then the test's arguments. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: the parameters of every function are accepted here and read back by `Remote`
type FixtureFunction = (ctx: AgentContext, ...args: any[]) => unknown;

/**
 * What a test sees of fixture module `M` in an agent: each exported function, without its
 * context parameter, returning a promise of its result. Arguments and results cross the agent's
 * IPC channel as JSON.
 */
export type Remote<M> = {
  readonly [K in keyof M as M[K] extends FixtureFunction ? K : never]: M[K] extends (ctx: AgentContext, ...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** A fixture module agents can run: its compiled path, and the type of its exports. */
export interface Fixture<M> {
  readonly name: string;
  readonly path: string;
  /** Carries the module type only; never set. */
  readonly module?: M;
}

/** The fixture module `name` (a file of test/fixtures), typed by its exports. */
export function fixture<N extends keyof AgentFixtures>(name: N): Fixture<AgentFixtures[N]> {
  return { name, path: fixturePath(name) };
}

/**
 * `result` of a fixture that answers failures as `{ error, message }` instead of throwing, when
 * it is not such a failure; throws the failure otherwise (the test then shows it).
 */
export function answered<T>(result: T | { error: string; message: string }): Exclude<T, { error: string; message: string }> {
  if (typeof result === 'object' && result !== null && 'error' in result && 'message' in result) {
    throw new Error(`the fixture answered ${result.error}: ${result.message}`);
  }
  return result as Exclude<T, { error: string; message: string }>;
}
