import { ConfigError, definePlugin, RecordType } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { query, testResolver } from '@heimdall/testing';
import { describe, expect, it } from 'vitest';
import { rewrite } from './index.js';

/** Downstream: records the question it sees and answers it (owner = the name it saw) plus a CNAME target. */
function answering() {
  const seen: string[] = [];
  const plugin = definePlugin({
    name: 'answer',
    setup: () => ({
      middleware: () => (ctx) => {
        seen.push(`${ctx.query.qname}/${ctx.query.qtype}`);
        ctx.reply({
          answers: [
            { name: ctx.query.qname, type: RecordType.CNAME, ttl: 60, data: 'target.home.arpa' },
            { name: 'target.home.arpa', type: RecordType.A, ttl: 60, data: '192.0.2.7' },
          ],
        });
      },
    }),
  })();
  return { plugin, seen };
}

const RULES = [
  { exact: 'printer.example', to: 'nas.home.arpa' },
  { suffix: '.lan', to: '.home.arpa' },
  { suffix: '.LAN', to: '.never.example' }, // shadowed by the rule above (case-insensitive, first match wins)
];

async function ask(name: string, rules: Parameters<typeof rewrite>[0] = { rules: RULES }, type: number = RecordType.A) {
  const down = answering();
  const r = testResolver([rewrite(rules), down.plugin]);
  const res = decode((await r.handle(query(name, type, { id: 4321 })))!);
  return { res, seen: down.seen };
}

describe('rewrite', () => {
  it('exact: the chain sees the new name; the client gets its own question and owner name, case kept', async () => {
    const { res, seen } = await ask('Printer.EXAMPLE');
    expect(seen).toEqual(['nas.home.arpa/1']);
    expect(res.id).toBe(4321);
    expect(res.rcode).toBe(0);
    expect(res.questions).toEqual([{ name: 'Printer.EXAMPLE', type: RecordType.A, class: 1 }]);
    expect(res.answers.map((a) => [a.name, a.type, a.data])).toEqual([
      ['Printer.EXAMPLE', RecordType.CNAME, 'target.home.arpa'],
      ['target.home.arpa', RecordType.A, '192.0.2.7'],
    ]);
  });

  it('suffix: the ending is replaced, the client part keeps its letter case; the type is untouched', async () => {
    const { res, seen } = await ask('NAS.Office.Lan', undefined, RecordType.AAAA);
    expect(seen).toEqual(['NAS.Office.home.arpa/28']);
    expect(res.questions).toEqual([{ name: 'NAS.Office.Lan', type: RecordType.AAAA, class: 1 }]);
    expect(res.answers[0]!.name).toBe('NAS.Office.Lan');
  });

  it('no match leaves the query untouched', async () => {
    for (const name of ['example.com', 'printer.example.com', 'xprinter.example', 'lan', 'island', 'lan.example']) {
      const { res, seen } = await ask(name);
      expect(seen).toEqual([`${name}/1`]);
      expect(res.questions[0]!.name).toBe(name);
      expect(res.answers[0]!.name).toBe(name);
    }
  });

  it('the first matching rule wins; trailing dots in rules are ignored', async () => {
    const rules = {
      rules: [
        { suffix: '.b.example.', to: '.first.example.' },
        { exact: 'a.b.example', to: 'second.example' },
      ],
    };
    expect((await ask('a.b.example', rules)).seen).toEqual(['a.first.example/1']);
    expect((await ask('a.b.example', { rules: [...rules.rules].reverse() })).seen).toEqual(['second.example/1']);
  });

  it('without rules it passes everything through', async () => {
    expect(rewrite().options).toEqual({ rules: [] });
    expect((await ask('x.lan', {})).seen).toEqual(['x.lan/1']);
  });

  it('a rewritten name that is too long answers SERVFAIL with the client question', async () => {
    const long = `${'a'.repeat(61)}.${'b'.repeat(61)}.${'c'.repeat(61)}.${'d'.repeat(61)}.lan`; // 251 characters; with .home.arpa 257
    const { res, seen } = await ask(long);
    expect(seen).toEqual([]);
    expect(res.rcode).toBe(2);
    expect(res.questions[0]!.name).toBe(long);
  });

  it.each([
    [
      {
        rules: [
          { exact: 'a.example', to: 'b.example' },
          { suffix: '.lan', to: 'bad..name' },
        ],
      },
      'rewrite.rules[1].to: must be a domain name',
    ],
    [{ rules: [{ exact: 'a b.example', to: 'b.example' }] }, 'rewrite.rules[0].exact: must be a domain name'],
    [{ rules: [{ suffix: '.lan' }] }, 'rewrite.rules[0]: must have `to` and one of `exact` or `suffix`'],
    [{ rules: [{ suffix: '.lan', exact: 'a.lan' }] }, 'rewrite.rules[0].to: is required'],
    [{ rules: [{ to: 'b.example' }] }, 'rewrite.rules[0]: must have `to` and one of `exact` or `suffix`'],
    [{ rules: [{ exact: 'a.example', suffix: '.lan', to: 'b.example' }] }, 'rewrite.rules[0]: must have `to` and one of `exact` or `suffix`'],
    [{ rules: [{ exact: 'a.example', to: 'b.example', ttl: 5 }] }, 'rewrite.rules[0]'],
    [{ rules: [{ exact: `${'x'.repeat(64)}.example`, to: 'b.example' }] }, 'rewrite.rules[0].exact: must be a domain name'],
    [{ rules: 'x.lan' }, 'rewrite.rules: must be an array'],
    [{ rule: [] }, 'rewrite.rule: unknown option (known: rules)'],
  ])('rejects %j with a ConfigError naming the path', (input, message) => {
    let error: unknown;
    try {
      rewrite(input as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message.startsWith(message)).toBe(true);
  });

  it('names the config path it is given', () => {
    expect(() => rewrite({ rules: [{ exact: 'a.example', to: '' }] }, { path: 'plugins[2].options' })).toThrow(/^plugins\[2\]\.options\.rules\[0\]\.to: /);
  });
});
