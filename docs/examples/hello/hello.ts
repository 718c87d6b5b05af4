import { definePlugin, options, RecordType, Type } from '@heimdall/core';

/** Answers TXT for one name; every other query goes down the chain. */
export const hello = definePlugin({
  name: 'hello',
  options: options({
    name: Type.String({ default: 'hello.test', description: 'The name to answer for.' }),
    text: Type.String({ default: 'hello', maxLength: 255, description: 'The TXT answer.' }),
  }),
  setup: (o) => ({
    middleware: () => (ctx, next) => {
      if (ctx.query.qname.toLowerCase() !== o.name) return next();
      ctx.answer([{ name: ctx.query.qname, type: RecordType.TXT, ttl: 60, data: [o.text] }]);
    },
  }),
});

export default hello;
