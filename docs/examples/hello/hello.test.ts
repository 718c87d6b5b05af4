import { expectAnswers, expectRcode, query, testResolver } from '@heimdall/testing';
import { expect, test } from 'vitest';
import hello from './hello.js';

test('answers its name (any case), passes the rest on', async () => {
  const r = testResolver([hello({ text: 'hej' })]);
  expectAnswers(await r.handle(query('Hello.TEST', 'TXT')), [{ type: 'TXT', ttl: 60, data: ['hej'] }]);
  expectRcode(await r.handle(query('other.test')), 'SERVFAIL'); // nobody after it answers
});

test('bad options fail fast, naming the field', () => {
  expect(() => hello({ text: 'x'.repeat(256) })).toThrow('hello.text: must be at most 255 characters long');
  expect(() => hello({ txt: 'hi' } as never)).toThrow('hello.txt: unknown option (known: name, text)');
});
