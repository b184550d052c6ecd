/** Filtering helpers for interrupt streams: `events$.pipe(ofType('lsc'), ofPort(0))`. */
import { filter, type OperatorFunction } from 'rxjs';
import type { InterruptEvent, InterruptEventOf, InterruptType } from './types.js';

/** Keeps events of the given types, narrowing the element type. */
export function ofType<T extends InterruptType>(...types: T[]): OperatorFunction<InterruptEvent, InterruptEventOf<T>> {
  const wanted = new Set<InterruptType>(types);
  return filter((e): e is InterruptEventOf<T> => wanted.has(e.type));
}

/** Keeps events whose source is the given port (lsc, removal, new, destroy). */
export function ofPort<E extends InterruptEvent>(port: number): OperatorFunction<E, E> {
  return filter((e) => 'portId' in e.source && e.source.portId === port);
}

/** Keeps the events of the alarm with this name. */
export function ofAlarm(name: string): OperatorFunction<InterruptEvent, InterruptEventOf<'alarm'>> {
  return filter((e): e is InterruptEventOf<'alarm'> => e.type === 'alarm' && e.source.alarm === name);
}

/** Keeps the events of the fd source with this name. */
export function ofFd(name: string): OperatorFunction<InterruptEvent, InterruptEventOf<'fd'>> {
  return filter((e): e is InterruptEventOf<'fd'> => e.type === 'fd' && e.source.fd === name);
}
