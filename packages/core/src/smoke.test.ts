import 'reflect-metadata';
import { Container, inject, injectable } from 'inversify';
import { expect, test } from 'vitest';

const T = Symbol('T');
@injectable()
class B {
  constructor(@inject(T) readonly v: number) {}
}
test('decorators work under the test transformer', () => {
  const c = new Container();
  c.bind(T).toConstantValue(42);
  c.bind(B).toSelf();
  expect(c.get(B).v).toBe(42);
});
