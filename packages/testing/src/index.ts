/**
 * @heimdall/testing — the plugin authors' kit: build queries and responses
 * in one line, run a middleware or a whole resolver on a query, a scriptable
 * fake upstream DNS server, a fake clock and assertion helpers.
 */
export * from './assert.js';
export * from './builders.js';
export * from './certs.js';
export * from './clients.js';
export * from './clock.js';
export * from './fake-upstream.js';
export * from './readme.js';
export * from './run.js';
