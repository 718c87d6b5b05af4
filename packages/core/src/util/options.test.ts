import { describe, expect, test } from 'vitest';
import { ConfigError } from '../errors.js';
import { OptionsReader } from './options.js';

describe('OptionsReader', () => {
  test('reads, defaults and bounds', () => {
    const o = new OptionsReader('geo', { database: './x.mmdb', ttl: 60, strict: true, mode: 'loose', tags: ['a', 'b'], nested: { n: 2 } });
    expect(o.string('database')).toBe('./x.mmdb');
    expect(o.integer('ttl', { default: 300, min: 0, max: 86400 })).toBe(60);
    expect(o.integer('missing', { default: 7 })).toBe(7);
    expect(o.number('absent', { default: undefined })).toBeUndefined();
    expect(o.boolean('strict', false)).toBe(true);
    expect(o.oneOf('mode', ['strict', 'loose'] as const, 'strict')).toBe('loose');
    expect(o.array('tags', (v, p) => { if (typeof v !== 'string') throw new ConfigError(p, 'must be a string', v); return v; })).toEqual(['a', 'b']);
    const n = o.object('nested');
    expect(n.integer('n')).toBe(2);
    n.done();
    o.done();
    expect(new OptionsReader('x', undefined).boolean('b', true)).toBe(true);
  });

  test('errors name the field path', () => {
    const o = () => new OptionsReader('plugins[1].options', { ttl: -1, name: 3, mode: 'x', list: [1, 'two'], deep: { bad: 1.5 }, extra: 1 });
    expect(() => o().integer('ttl', { min: 0, max: 10 })).toThrow('plugins[1].options.ttl: must be a number in 0..10');
    expect(() => o().string('name')).toThrow('plugins[1].options.name: must be a string');
    expect(() => o().string('nope')).toThrow('plugins[1].options.nope: is required');
    expect(() => o().oneOf('mode', ['a', 'b'])).toThrow("plugins[1].options.mode: must be one of 'a', 'b'");
    expect(() => o().array('list', (v, p) => { if (typeof v !== 'number') throw new ConfigError(p, 'must be a number', v); return v; })).toThrow('plugins[1].options.list[1]: must be a number');
    expect(() => o().object('deep').integer('bad')).toThrow('plugins[1].options.deep.bad: must be an integer');
    const r = o();
    r.raw('ttl');
    r.raw('name');
    r.raw('mode');
    r.raw('list');
    r.raw('deep');
    expect(() => r.done()).toThrow('plugins[1].options.extra: unknown option');
    expect(() => new OptionsReader('geo', [1])).toThrow('geo: options must be an object');
    expect(() => new OptionsReader('geo', { s: '' }).string('s')).toThrow('geo.s: must not be empty');
  });
});
