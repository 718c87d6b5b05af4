/**
 * Sync-capable onion composition (koa-compose semantics without the Promise
 * per step).
 *
 * koa-compose wraps every step in `Promise.resolve(...)`, so a chain of n
 * pass-through middleware costs n Promises and n microtask hops even when no
 * step awaits. Here a step's return value is passed through untouched: when
 * every step returns `undefined`, the whole chain runs and returns
 * synchronously, with one small closure (the `next` of that step) per step
 * as the only allocation. A Promise exists only where a middleware really
 * returned one.
 */
import { NextCalledTwiceError } from '../errors.js';
import type { Middleware, Next } from './types.js';

/** A middleware with the name of the plugin it came from (used to attribute errors). */
export interface NamedMiddleware<C = import('./context.js').DnsContext> {
  readonly name: string;
  readonly middleware: Middleware<C>;
}

/** A composed chain: `run(ctx)` returns `undefined` when the chain completed synchronously. */
export type ComposedMiddleware<C = import('./context.js').DnsContext> = (ctx: C) => void | Promise<void>;

const origins = new WeakMap<object, string>();

/**
 * The name of the plugin whose middleware first threw (or rejected with)
 * `error`, when the error went through a chain built by {@link compose}
 * with named steps. Used by the resolver to log a failure once, with the
 * plugin that caused it.
 */
export function errorOrigin(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null) return origins.get(error);
  return lastPrimitive.set && Object.is(lastPrimitive.value, error) ? lastPrimitive.name : undefined;
}

// A thrown primitive (`throw 'oops'`) cannot key a WeakMap: remember the last one.
const lastPrimitive: { set: boolean; value: unknown; name: string } = { set: false, value: undefined, name: '' };

function tag(error: unknown, name: string): void {
  if (typeof error === 'object' && error !== null) {
    if (!origins.has(error)) origins.set(error, name);
  } else if (!(lastPrimitive.set && Object.is(lastPrimitive.value, error))) {
    lastPrimitive.set = true;
    lastPrimitive.value = error;
    lastPrimitive.name = name;
  }
}

/**
 * Composes middleware into one function, onion-style, in array order.
 *
 * - A step that does not await keeps the chain synchronous: `run(ctx)`
 *   returns `undefined` and no Promise is allocated anywhere.
 * - A step that returns a Promise makes `run(ctx)` return a Promise that
 *   settles when the whole chain has.
 * - Calling `next()` twice from the same step throws {@link NextCalledTwiceError}
 *   (or rejects, when called after an await).
 * - An error thrown (or a rejection) is remembered with the name of the step
 *   it started in, see {@link errorOrigin}, and then propagates unchanged.
 *
 * Cost: one closure per step per run; nothing per step at compose time
 * beyond arrays.
 *
 * @example
 * const run = compose([{ name: 'log', middleware: (ctx, next) => next() }, { name: 'answer', middleware: (ctx) => { ctx.refused(); } }]);
 * const p = run(ctx); // undefined: completed synchronously
 */
export function compose<C>(steps: ReadonlyArray<NamedMiddleware<C> | Middleware<C>>): ComposedMiddleware<C> {
  const n = steps.length;
  const fns: Middleware<C>[] = new Array(n);
  const names: string[] = new Array(n);
  const onReject: Array<(e: unknown) => never> = new Array(n);
  for (let i = 0; i < n; i++) {
    const step = steps[i];
    if (typeof step === 'function') {
      fns[i] = step;
      names[i] = step.name || `#${i}`;
    } else if (step && typeof step.middleware === 'function') {
      fns[i] = step.middleware;
      names[i] = step.name;
    } else {
      throw new TypeError(`compose: step ${i} is not a middleware function`);
    }
    const name = names[i];
    onReject[i] = (e: unknown): never => {
      tag(e, name);
      throw e;
    };
  }

  if (n === 0) return () => undefined;

  function dispatch(ctx: C, i: number): void | Promise<void> {
    let called = false;
    const next: Next =
      i + 1 === n
        ? () => {
            if (called) throw new NextCalledTwiceError(names[i]);
            called = true;
          }
        : () => {
            if (called) throw new NextCalledTwiceError(names[i]);
            called = true;
            return dispatch(ctx, i + 1);
          };
    let result: void | Promise<void>;
    try {
      result = fns[i](ctx, next);
    } catch (e) {
      tag(e, names[i]);
      throw e;
    }
    if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
      return (result as Promise<void>).then(undefined, onReject[i]);
    }
    return undefined;
  }

  if (n === 1) {
    // Hono's trick: a single step needs no recursion; its `next` is the
    // end of the chain and still refuses to be called twice.
    const only = fns[0];
    const name = names[0];
    const reject = onReject[0];
    return (ctx: C) => {
      let called = false;
      let result: void | Promise<void>;
      try {
        result = only(ctx, () => {
          if (called) throw new NextCalledTwiceError(name);
          called = true;
        });
      } catch (e) {
        tag(e, name);
        throw e;
      }
      if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
        return (result as Promise<void>).then(undefined, reject);
      }
      return undefined;
    };
  }

  return (ctx: C) => dispatch(ctx, 0);
}
