import { describe, expect, test } from 'vitest';
import { NextCalledTwiceError } from '../errors.js';
import { compose, errorOrigin } from './compose.js';
import type { Middleware } from './types.js';

type Ctx = { log: string[]; n: number };
const ctx = (): Ctx => ({ log: [], n: 0 });

describe('compose', () => {
  test('runs in onion order and stays synchronous when nobody awaits', () => {
    const mk =
      (name: string): Middleware<Ctx> =>
      (c, next) => {
        c.log.push(`${name}>`);
        next();
        c.log.push(`<${name}`);
      };
    const run = compose([mk('a'), mk('b'), mk('c')]);
    const c = ctx();
    const r = run(c);
    expect(r).toBeUndefined();
    expect(c.log).toEqual(['a>', 'b>', 'c>', '<c', '<b', '<a']);
  });

  test('a step that does not call next stops the chain', () => {
    const run = compose<Ctx>([(_c, next) => next(), (c) => void c.log.push('stop'), (c) => void c.log.push('never')]);
    const c = ctx();
    run(c);
    expect(c.log).toEqual(['stop']);
  });

  test('empty and single-step chains', () => {
    expect(compose<Ctx>([])(ctx())).toBeUndefined();
    const c = ctx();
    expect(
      compose<Ctx>([
        (x, next) => {
          x.n++;
          return next();
        },
      ])(c),
    ).toBeUndefined();
    expect(c.n).toBe(1);
  });

  test('returns a Promise only when a step is async, and awaits the rest', async () => {
    const run = compose<Ctx>([
      (c, next) => {
        c.log.push('sync>');
        const r = next();
        c.log.push('<sync');
        return r;
      },
      async (c, next) => {
        await new Promise((r) => setTimeout(r, 1));
        c.log.push('async');
        await next();
        c.log.push('after');
      },
      (c) => void c.log.push('last'),
    ]);
    const c = ctx();
    const r = run(c);
    expect(r).toBeInstanceOf(Promise);
    await r;
    expect(c.log).toEqual(['sync>', '<sync', 'async', 'last', 'after']);
  });

  test('next() twice throws (sync) and rejects (async)', async () => {
    const twice = compose<Ctx>([
      {
        name: 'bad',
        middleware: (_c, next) => {
          next();
          next();
        },
      },
      { name: 'end', middleware: () => {} },
    ]);
    expect(() => twice(ctx())).toThrow(NextCalledTwiceError);
    try {
      twice(ctx());
    } catch (e) {
      expect((e as Error).message).toContain('plugin/bad');
    }
    const twiceAsync = compose<Ctx>([
      {
        name: 'bad',
        middleware: async (_c, next) => {
          await next();
          await next();
        },
      },
      { name: 'end', middleware: async () => {} },
    ]);
    await expect(twiceAsync(ctx())).rejects.toBeInstanceOf(NextCalledTwiceError);
    const single = compose<Ctx>([
      {
        name: 'one',
        middleware: (_c, next) => {
          next();
          next();
        },
      },
    ]);
    expect(() => single(ctx())).toThrow(/next\(\) called multiple times/);
  });

  test('a second synchronous next() is caught and named even while the inner step is pending', async () => {
    let release: () => void = () => {};
    const run = compose<Ctx>([
      {
        name: 'outer',
        middleware: (_c, next) => {
          const p = next(); // the inner step goes asynchronous
          next();
          return p;
        },
      },
      { name: 'inner', middleware: () => new Promise<void>((resolve) => (release = resolve)) },
    ]);
    expect(() => run(ctx())).toThrow('plugin/outer: next() called multiple times');
    release();
  });

  test('an awaited next() reaches the rest of the chain: each step of a run, sync or async, in order', async () => {
    const c = ctx();
    const step =
      (name: string, wait: boolean): Middleware<Ctx> =>
      async (x, next) => {
        x.log.push(`${name}>`);
        if (wait) await new Promise((resolve) => setTimeout(resolve, 1));
        await next();
        x.log.push(`<${name}`);
      };
    const run = compose<Ctx>([step('a', true), step('b', false), step('c', true), (x) => void x.log.push('end')]);
    // Two runs at once: each keeps its own place in the chain.
    const c2 = ctx();
    await Promise.all([run(c), run(c2)]);
    expect(c.log).toEqual(['a>', 'b>', 'c>', 'end', '<c', '<b', '<a']);
    expect(c2.log).toEqual(c.log);
  });

  test('next() after the run answered (a timer) gets a rejected Promise and runs nothing', async () => {
    const c = ctx();
    let late: (() => unknown) | undefined;
    const run = compose<Ctx>([
      (x, next) => {
        late = next; // answers now, calls next later: a bug, but it must not run the rest nor crash
        x.n = 1;
      },
      (x) => {
        x.n = 2;
      },
    ]);
    expect(run(c)).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 1));
    const r = late!();
    expect(r).toBeInstanceOf(Promise);
    await expect(r).rejects.toBeInstanceOf(NextCalledTwiceError);
    expect(c.n).toBe(1);
  });

  test('remembers which step an error started in (sync throw and async rejection)', async () => {
    const boom = new Error('boom');
    const run = compose<Ctx>([
      { name: 'outer', middleware: (_c, next) => next() },
      {
        name: 'thrower',
        middleware: () => {
          throw boom;
        },
      },
    ]);
    expect(() => run(ctx())).toThrow(boom);
    expect(errorOrigin(boom)).toBe('thrower');

    const late = new Error('late');
    const runAsync = compose<Ctx>([
      {
        name: 'outer',
        middleware: async (_c, next) => {
          await next();
        },
      },
      { name: 'middle', middleware: (_c, next) => next() },
      {
        name: 'rejecter',
        middleware: async () => {
          await Promise.resolve();
          throw late;
        },
      },
    ]);
    await expect(runAsync(ctx())).rejects.toBe(late);
    expect(errorOrigin(late)).toBe('rejecter');
    expect(errorOrigin('not an object')).toBeUndefined();
  });

  test('a step may catch an error from downstream and recover', () => {
    const run = compose<Ctx>([
      (c, next) => {
        try {
          next();
        } catch {
          c.log.push('recovered');
        }
      },
      () => {
        throw new Error('x');
      },
    ]);
    const c = ctx();
    expect(run(c)).toBeUndefined();
    expect(c.log).toEqual(['recovered']);
  });

  test('rejects non-functions at compose time', () => {
    expect(() => compose([42 as unknown as Middleware<Ctx>])).toThrow(TypeError);
  });

  test('deep synchronous chains stay synchronous: no step ever sees a Promise', () => {
    let promises = 0;
    const steps: Middleware<Ctx>[] = Array.from({ length: 200 }, () => (c: Ctx, next) => {
      c.n++;
      const r = next();
      if (r !== undefined) promises++;
      return r;
    });
    const run = compose(steps);
    const c = ctx();
    expect(run(c)).toBeUndefined();
    expect(c.n).toBe(200);
    expect(promises).toBe(0);
    // …whereas one asynchronous step at the end makes every level see one.
    const tail = compose([...steps, async () => {}]);
    promises = 0;
    expect(tail(ctx())).toBeInstanceOf(Promise);
    expect(promises).toBe(200);
  });
});

test('errorOrigin works for thrown primitives too', () => {
  const run = compose<{ n: number }>([
    { name: 'a', middleware: (_c, next) => next() },
    {
      name: 'thrower',
      middleware: () => {
        throw 'plain string';
      },
    },
  ]);
  expect(() => run({ n: 0 })).toThrow();
  expect(errorOrigin('plain string')).toBe('thrower');
  expect(errorOrigin('other')).toBeUndefined();
});
