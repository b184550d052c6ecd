/** Typings of native/hash.cc: the group's name registry (rte_hash, hashes computed by the caller). */
import { addon } from './addon.js';

export interface RegistryBinding {
  /** Creates or finds the registry; returns its capacity. */
  regAttach(entries: number): number;
  /** False when the name is taken. */
  regAdd(name: string, slot: number, generation: number, id: number): boolean;
  /** True and out = [slot, generation, id] when found. */
  regLookup(name: string, out: Uint32Array): boolean;
  /** Removes the name only if it still maps to (slot, generation, id). */
  regRemove(name: string, slot: number, generation: number, id: number): boolean;
  regCount(): number;
  /** Bumped by every removal. */
  regEpoch(): number;
  regNames(slot?: number): string[];
}

/** The addon's registry functions (loads the addon on first use). */
export function registryNative(): RegistryBinding {
  return addon() as unknown as RegistryBinding;
}
