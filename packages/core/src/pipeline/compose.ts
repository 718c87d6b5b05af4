/**
 * Sync-capable onion composition (koa-compose semantics without the Promise
 * per step).
 *
 * koa-compose wraps every step in `Promise.resolve(...)`, so a chain of n
 * pass-through middleware costs n Promises and n microtask hops even when no
 * step awaits. Here a step's return value is passed through untouched: when
 * every step returns `undefined`, the whole chain runs and returns
 * synchronously, with one small object and one closure per run as the
 * only allocation. A Promise exists only where a middleware really
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
const ignore = (): void => {};

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
 *   (or rejects, when called after an await; a call made after the run
 *   answered, from a timer say, gets a rejected Promise and does nothing).
 * - An error thrown (or a rejection) is remembered with the name of the step
 *   it started in, see {@link errorOrigin}, and then propagates unchanged.
 *
 * Cost: one small object and one closure per run (every step of a run
 * gets the same `next`); nothing per step at compose time beyond arrays.
 * A second `next()` made synchronously is always caught and names its
 * step; one made after an await is caught once the step that should be
 * calling it has answered (or the chain has ended) — an outer step calling
 * again while an inner one is still pending is taken for the inner one's
 * call, and the error comes when that one calls.
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

  /**
   * `next()` of the run `r`. Only one step may call it at any moment: the
   * deepest entered step, once. A synchronous call comes from the step whose
   * function is on the stack (`r.running`), so a second call is caught and
   * named exactly; an asynchronous call (no step of this run on the stack)
   * is taken as the deepest step's, and refused once that step has answered
   * or the chain has ended.
   */
  function advance(r: Run<C>): void | Promise<void> {
    const caller = r.running >= 0 ? r.running : r.deepest;
    if (r.running >= 0) {
      if (caller !== r.deepest || r.ended) throw new NextCalledTwiceError(names[caller]);
    } else if (r.deepestDone || r.ended) {
      // After an await: a second call, or one made after the run answered. The awaiting step
      // gets the rejection; a fire-and-forget call (a timer) is ignored instead of crashing the process.
      const refused = Promise.reject(new NextCalledTwiceError(undefined));
      refused.catch(ignore);
      return refused;
    }
    if (caller + 1 === n) {
      r.ended = true;
      return undefined;
    }
    return dispatch(r, caller + 1);
  }

  function dispatch(r: Run<C>, i: number): void | Promise<void> {
    r.deepest = i;
    r.deepestDone = false;
    const outer = r.running;
    r.running = i;
    let result: void | Promise<void>;
    try {
      result = fns[i](r.ctx, r.next);
    } catch (e) {
      r.running = outer;
      // Ended by throwing: no next() may follow from it.
      if (r.deepest === i) r.deepestDone = true;
      tag(e, names[i]);
      throw e;
    }
    r.running = outer;
    if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') return settled(r, i, result as Promise<void>);
    // Returned without calling next: it answered.
    if (r.deepest === i) r.deepestDone = true;
    return undefined;
  }

  /**
   * The asynchronous end of step `i`. Kept out of `dispatch`: closures there
   * would make V8 allocate a context for `r` and `i` on every step of every
   * query (about 48 bytes each), asynchronous or not.
   */
  function settled(r: Run<C>, i: number, result: Promise<void>): Promise<void> {
    if (r.deepest !== i) return result.then(undefined, onReject[i]);
    // The deepest step went asynchronous before calling next: it has answered once its Promise settles.
    return result.then(
      () => {
        if (r.deepest === i) r.deepestDone = true;
      },
      (e: unknown) => {
        if (r.deepest === i) r.deepestDone = true;
        return onReject[i](e);
      },
    );
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

  return (ctx: C) => dispatch(new Run(ctx, advance), 0);
}

/**
 * One run of a composed chain: the context, where the run is, and the one
 * `next` function every step of it gets (a closure per run, not per step).
 */
class Run<C> {
  readonly ctx: C;
  readonly next: Next;
  /** The deepest step entered. */
  deepest = 0;
  /** Whether the deepest step has answered (returned, or settled, without calling next). */
  deepestDone = false;
  /** Whether the last step called next (the end of the chain). */
  ended = false;
  /** The step whose middleware function is on the stack (the innermost), -1 when none. */
  running = -1;

  constructor(ctx: C, advance: (r: Run<C>) => void | Promise<void>) {
    this.ctx = ctx;
    this.next = () => advance(this);
  }
}
