/**
 * Logger construction, so that embedders and the testing kit need no direct
 * pino dependency.
 */
import process from 'node:process';
import { type Logger, type LoggerOptions, pino } from 'pino';

/**
 * A pino logger named `heimdall`. Level: `options.level`, else
 * `HEIMDALL_LOG_LEVEL`, else `silent` under vitest and `info` otherwise.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.HEIMDALL_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
  return pino({ name: 'heimdall', ...options, level });
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
