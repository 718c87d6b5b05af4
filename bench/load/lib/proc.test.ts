import { closeSync, openSync, readSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuMicros, sysCpuMicros } from './proc.js';

/** The kernel's share of this process's CPU while `work` runs for at least `ms`. */
function kernelShareOf(work: () => void, ms: number): number {
  const c0 = cpuMicros(process.pid);
  const s0 = sysCpuMicros(process.pid);
  const end = Date.now() + ms;
  while (Date.now() < end) work();
  return (sysCpuMicros(process.pid) - s0) / (cpuMicros(process.pid) - c0);
}

describe('sysCpuMicros (the kernel column of load:native)', () => {
  it('is the system part of cpuMicros: most of a /dev/zero read loop, little of a loop in JavaScript', () => {
    const fd = openSync('/dev/zero', 'r');
    const buf = Buffer.allocUnsafe(4 << 20);
    try {
      // The kernel zeroes 4 MiB per read; the loop around it is a few µs of JavaScript.
      expect(kernelShareOf(() => readSync(fd, buf, 0, buf.length, null), 400)).toBeGreaterThan(0.6);
    } finally {
      closeSync(fd);
    }
    let x = 0;
    expect(
      kernelShareOf(() => {
        for (let i = 0; i < 100_000; i++) x = (x * 31 + i) | 0;
      }, 400),
    ).toBeLessThan(0.3);
    expect(sysCpuMicros(process.pid)).toBeLessThanOrEqual(cpuMicros(process.pid));
    expect(x).not.toBeNaN();
  });
});
