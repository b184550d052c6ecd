/**
 * What a piece of code allocates, by the function that allocated it: V8's sampling heap
 * profiler (through the inspector), objects already collected included, around one call. For
 * the measuring tools (alloc-per-ask.ts, profile-decode.ts), not the suites.
 */
import { Session } from 'node:inspector/promises';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Bytes allocated in all, and by site (`function file:line`), while `run` ran; with its result. */
export async function sampledAllocations<T>(run: () => Promise<T> | T): Promise<{ result: T; total: number; bySite: Map<string, number> }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const result = await run();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
    const bySite = new Map<string, number>();
    let total = 0;
    const visit = (node: SamplingNode): void => {
      if (node.selfSize > 0) {
        const { functionName, url, lineNumber } = node.callFrame;
        const site = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
        bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
        total += node.selfSize;
      }
      for (const child of node.children) visit(child);
    };
    visit(profile.head);
    return { result, total, bySite };
  } finally {
    session.disconnect();
  }
}

/** The `top` sites of `bySite`, each as bytes per `count` (one line each, largest first). */
export function topSites(bySite: Map<string, number>, count: number, top: number): string[] {
  return [...bySite]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([site, bytes]) => `${String(Math.round(bytes / count)).padStart(6)}  ${site}`);
}
