/**
 * @heimdall/core — DNS packet codec, request pipeline, plugin API with
 * dependency injection, and transports.
 */
import 'reflect-metadata';

export * from './packet/index.js';
export * from './tokens.js';
export * from './pipeline/types.js';
