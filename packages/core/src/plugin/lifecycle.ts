/**
 * Start/stop hooks that are not plugin hooks (a service's periodic sweep,
 * a snapshot flush). Bound under `LIFECYCLE` in every resolver's container.
 */
import type { Lifecycle } from '../tokens.js';

/**
 * The resolver's {@link Lifecycle}: `onStart` hooks run in registration order
 * after every plugin's `start`; `onStop` hooks run in reverse registration
 * order before the plugins' `stop`. A hook registered after start has
 * happened is run at stop only.
 */
export class ResolverLifecycle implements Lifecycle {
  /** @internal */ readonly starts: Array<() => void | Promise<void>> = [];
  /** @internal */ readonly stops: Array<() => void | Promise<void>> = [];

  onStart(fn: () => void | Promise<void>): void {
    this.starts.push(fn);
  }

  onStop(fn: () => void | Promise<void>): void {
    this.stops.push(fn);
  }

  /** Runs the start hooks in order. */
  async runStart(): Promise<void> {
    for (const fn of this.starts) await fn();
  }

  /** Runs every stop hook in reverse order; errors are collected, not short-circuiting. */
  async runStop(onError: (e: unknown) => void): Promise<void> {
    for (let i = this.stops.length - 1; i >= 0; i--) {
      try {
        await this.stops[i]();
      } catch (e) {
        onError(e);
      }
    }
  }
}
