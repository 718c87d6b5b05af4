/**
 * @internal The address helpers moved to `@heimdall/core/wire` (`src/wire/ip.ts`,
 * the one IP implementation); this module only keeps older imports working.
 */
export { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../wire/ip.js';
