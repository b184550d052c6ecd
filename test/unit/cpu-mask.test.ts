/**
 * The CPU masks of the process table (native/cpu_mask.h), which the crowded check of the mailbox
 * receive loop uses to count only the awake processes that may run on this process's CPUs: a
 * small C++ program built from the header alone prints what the functions return.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/paths.js';

const PROGRAM = String.raw`
#include <stdio.h>
#include "cpu_mask.h"
using namespace mpbus;

// A mask from a CPU list ("" = no CPU, the unknown mask).
static void MaskOf(const char* list, CpuMask& mask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const char* p = list; *p != 0;) {
    int cpu = 0;
    while (*p >= '0' && *p <= '9') cpu = cpu * 10 + (*p++ - '0');
    CPU_SET(cpu, &set);
    if (*p == ',') p++;
  }
  CpuMaskFromSet(set, mask);
}

int main(int argc, char** argv) {
  // argv: pairs of CPU lists; prints, per pair, "<words of the first mask> <overlap 0|1>".
  for (int i = 1; i + 1 < argc; i += 2) {
    CpuMask a, b;
    MaskOf(argv[i], a);
    MaskOf(argv[i + 1], b);
    printf("%llx,%llx,%llx,%llx %d\n", (unsigned long long)a[0], (unsigned long long)a[1],
           (unsigned long long)a[2], (unsigned long long)a[3], CpuMasksOverlap(a, b) ? 1 : 0);
  }
  return 0;
}
`;

let dir = '';
let binary = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mpbus-cpumask-'));
  writeFileSync(join(dir, 'main.cc'), PROGRAM);
  binary = join(dir, 'cpu-mask');
  execFileSync('c++', ['-std=c++17', '-O1', '-I', join(repoRoot, 'native'), join(dir, 'main.cc'), '-o', binary]);
}, 60_000);
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** Each pair's [first mask's words, overlap]. */
function run(...lists: string[]): string[] {
  return execFileSync(binary, lists, { encoding: 'utf8' }).trim().split('\n');
}

describe('CPU masks of the process table', () => {
  it('sets one bit per CPU, across the words', () => {
    expect(run('0', '0', '1,3', '1', '64,255', '0')).toEqual(['1,0,0,0 1', 'a,0,0,0 1', '0,1,0,8000000000000000 0']);
  });

  it('is unknown (all zero) when a CPU is above 255', () => {
    expect(run('1,256', '0')).toEqual(['0,0,0,0 1']);
  });

  it('overlaps only when a CPU is shared: a launcher on CPU 0 does not compete with workers on CPU 1', () => {
    expect(run('0', '1', '1', '1', '0,1', '1', '2,70', '70')).toEqual(['1,0,0,0 0', '2,0,0,0 1', '3,0,0,0 1', '4,40,0,0 1']);
  });

  it('counts an unknown mask (an older build, a C peer) as every CPU, on either side', () => {
    expect(run('', '1', '1', '', '', '')).toEqual(['0,0,0,0 1', '2,0,0,0 1', '0,0,0,0 1']);
  });
});
