/**
 * The process's signal handlers, installed first thing (before the config is
 * read or a plugin starts), so that no signal finds the process without one:
 *
 * - while starting, SIGTERM/SIGINT exit 0 at once (nothing is served yet)
 *   and SIGHUP is ignored (Node's default for it would end the process);
 * - once running, whoever runs the resolver (single process or cluster
 *   primary) takes them over with {@link SignalRouter.handle}.
 */
import process from 'node:process';
import type { Logger } from 'pino';

/** What to do on each signal. */
export interface SignalHandlers {
  /** SIGTERM, SIGINT. */
  stop(signal: NodeJS.Signals): void;
  /** SIGHUP. */
  reload(): void;
}

/** Routes SIGTERM, SIGINT and SIGHUP to the current {@link SignalHandlers}. */
export interface SignalRouter {
  /** Logger for the start-phase messages, once there is one. */
  logger: Logger | undefined;
  /** Replaces the handlers. */
  handle(handlers: SignalHandlers): void;
}

let router: (SignalRouter & { current: SignalHandlers }) | undefined;

/** Installs the handlers (once per process) and returns the router. */
export function installSignalHandlers(): SignalRouter {
  if (router !== undefined) return router;
  const r: SignalRouter & { current: SignalHandlers } = {
    logger: undefined,
    current: {
      stop(signal) {
        if (r.logger) r.logger.info({ signal }, 'stop requested while starting; exiting');
        else process.stderr.write(`heimdall: ${signal} while starting; exiting\n`);
        process.exit(0);
      },
      reload() {
        r.logger?.warn({ signal: 'SIGHUP' }, 'SIGHUP while starting ignored (nothing to reload yet)');
      },
    },
    handle(handlers) {
      r.current = handlers;
    },
  };
  process.on('SIGTERM', () => r.current.stop('SIGTERM'));
  process.on('SIGINT', () => r.current.stop('SIGINT'));
  process.on('SIGHUP', () => r.current.reload());
  router = r;
  return r;
}
