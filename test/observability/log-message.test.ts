import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { LogSink } from '../support/service.js';

describe('the message of a log line', () => {
  it('quotes URLs with their credentials masked, as the fields of the line do', () => {
    const sink = new LogSink();
    const logger = createLogger({ level: 'info', destination: sink });
    logger.error({ event: 't.one' }, 'fetch failed for https://user:pw-one@api.example/v1?token=tok-one');
    logger.warn('no fields: http://h.example/cb?access_token=tok-two&page=2');
    logger.info({ event: 't.three' }, 'formatted %s then %d', 'https://u:pw-three@h.example/', 3);
    logger.child({ component: 'c' }).info({ event: 't.four' }, 'child https://h.example/#id_token=tok-four');
    const text = JSON.stringify(sink.entries);
    for (const secret of ['pw-one', 'tok-one', 'tok-two', 'pw-three', 'tok-four']) expect(text).not.toContain(secret);
    expect(sink.entries.map((e) => e.msg)).toEqual([
      'fetch failed for https://[redacted]@api.example/v1?token=[redacted]',
      'no fields: http://h.example/cb?access_token=[redacted]&page=2',
      'formatted https://[redacted]@h.example/ then 3',
      'child https://h.example/#id_token=[redacted]',
    ]);
  });

  it('leaves a message without a URL as it is', () => {
    const sink = new LogSink();
    const logger = createLogger({ level: 'info', destination: sink });
    logger.info({ event: 't.plain' }, 'scan completed: 3 violations, token count 12');
    expect(sink.entries[0]).toMatchObject({ event: 't.plain', msg: 'scan completed: 3 violations, token count 12' });
  });
});
