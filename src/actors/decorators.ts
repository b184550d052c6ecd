/**
 * Decorators for class actors:
 *
 * ```ts
 * @Actor('greeter')
 * class Greeter {
 *   constructor(private readonly clock: Clock) {}          // injected by tsyringe
 *   @Handle('greet') greet(msg: { who: string }) { return `hello ${msg.who}`; }
 * }
 * ```
 *
 * A class may also skip `@Handle` and name its methods after the actions (`implements
 * Handlers<Contract>` then type-checks them).
 */
import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { SupervisionStrategy } from './supervision.js';

/** Options an actor class declares (spawn options override them). */
export interface ActorDeclaration {
  /** How the actor's failures are handled (default: restart, see `defaultSupervision`). */
  supervision?: SupervisionStrategy | undefined;
  /** Groups the actor joins when spawned (routers can take their workers from a group). */
  groups?: string[] | undefined;
}

/** A class that can be spawned as an actor. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ActorClass<T extends object = object> = new (...args: any[]) => T;

interface ActorMeta extends ActorDeclaration {
  name?: string;
}

const actorMeta = new WeakMap<object, ActorMeta>();
const handlerMeta = new WeakMap<object, Map<string, string | symbol>>();

/** Marks a class as an actor, optionally with a default name, and makes it injectable. */
export function Actor(name?: string, declaration: ActorDeclaration = {}): ClassDecorator {
  return (target) => {
    actorMeta.set(target, { ...declaration, ...(name === undefined ? {} : { name }) });
    injectable()(target as unknown as ActorClass);
  };
}

/** Marks a method as the handler of `action` (several actions may share one method). */
export function Handle(action: string): MethodDecorator {
  return (prototype, method) => {
    let map = handlerMeta.get(prototype);
    if (!map) {
      map = new Map();
      handlerMeta.set(prototype, map);
    }
    map.set(action, method);
  };
}

/** @internal what `@Actor` declared on a class. */
export function actorDeclaration(cls: ActorClass): ActorMeta {
  return actorMeta.get(cls) ?? {};
}

/** Methods a class actor never exposes as actions. */
const reserved = new Set(['constructor', 'preStart', 'postStop']);

/** @internal the method that handles `action` on an instance, walking the prototype chain. */
export function classHandler(instance: object, action: string): ((msg: unknown, ctx: unknown) => unknown) | undefined {
  for (
    let proto = Object.getPrototypeOf(instance) as object | null;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    const method = handlerMeta.get(proto)?.get(action);
    if (method !== undefined) return bound(instance, method);
  }
  if (reserved.has(action) || action.startsWith('_')) return undefined;
  for (
    let proto = Object.getPrototypeOf(instance) as object | null;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    if (Object.prototype.hasOwnProperty.call(proto, action)) return bound(instance, action);
  }
  return undefined;
}

function bound(instance: object, method: string | symbol): ((msg: unknown, ctx: unknown) => unknown) | undefined {
  const fn = (instance as Record<string | symbol, unknown>)[method];
  return typeof fn === 'function' ? (fn as (m: unknown, c: unknown) => unknown).bind(instance) : undefined;
}
