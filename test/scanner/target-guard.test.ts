import { describe, expect, it } from 'vitest';
import { WcagaiError, type ErrorCode } from '../../src/errors/catalogue.js';
import type { Resolver, TargetPolicy } from '../../src/scanner/types.js';
import {
  checkTarget,
  createCachingResolver,
  defaultResolver,
  hostAllowed,
  isPrivateAddress,
  parseTargetUrl,
  policyFromEnv,
} from '../../src/scanner/target-guard.js';

/** A fake DNS: known names answer from the table, anything else fails like ENOTFOUND. */
function fakeResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (host: string): Promise<string[]> => {
    calls.push(host);
    const answer = table[host];
    if (!answer) throw new WcagaiError('DNS_FAILURE', `cannot resolve ${host}: ENOTFOUND`);
    return answer;
  };
  return Object.assign(resolve, { calls });
}

const DNS = {
  'example.com': ['93.184.215.14'],
  'dual.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'sneaky.example.com': ['127.0.0.1'],
  'mixed.example.com': ['93.184.215.14', '10.0.0.5'],
  'mixed6.example.com': ['2606:4700::1111', 'fd00:ec2::254'],
  'meta.example.com': ['169.254.169.254'],
  'mapped.example.com': ['::ffff:192.168.0.1'],
  'garbage.example.com': ['not-an-ip'],
  'empty.example.com': [],
};

function policy(overrides: Partial<TargetPolicy> = {}): TargetPolicy {
  return { allowPrivate: false, allowedHosts: [], resolve: fakeResolver(DNS), ...overrides };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (err instanceof WcagaiError) return err.code;
    throw err;
  }
}

describe('checkTarget refuses', () => {
  const refused: Array<[string, ErrorCode]> = [
    ['http://169.254.169.254/', 'BLOCKED_TARGET'],
    ['http://169.254.169.254/latest/meta-data/iam/', 'BLOCKED_TARGET'],
    ['http://[::1]/', 'BLOCKED_TARGET'],
    ['http://[::]/', 'BLOCKED_TARGET'],
    ['http://2130706433/', 'BLOCKED_TARGET'],
    ['http://0177.0.0.1/', 'BLOCKED_TARGET'],
    ['http://0x7f000001/', 'BLOCKED_TARGET'],
    ['http://0x7f.1/', 'BLOCKED_TARGET'],
    ['http://127.1/', 'BLOCKED_TARGET'],
    ['http://127.0.0.1:8080/admin', 'BLOCKED_TARGET'],
    ['http://[::ffff:127.0.0.1]/', 'BLOCKED_TARGET'],
    ['http://[::ffff:7f00:1]/', 'BLOCKED_TARGET'],
    ['http://[::127.0.0.1]/', 'BLOCKED_TARGET'],
    ['http://[::ffff:169.254.169.254]/', 'BLOCKED_TARGET'],
    ['http://[64:ff9b::10.0.0.1]/', 'BLOCKED_TARGET'],
    ['http://[2002:a00:1::]/', 'BLOCKED_TARGET'],
    ['http://[fd00:ec2::254]/', 'BLOCKED_TARGET'],
    ['http://[fe80::1]/', 'BLOCKED_TARGET'],
    ['http://[ff02::1]/', 'BLOCKED_TARGET'],
    ['http://[2001:db8::1]/', 'BLOCKED_TARGET'],
    ['http://10.0.0.1/', 'BLOCKED_TARGET'],
    ['http://192.168.1.1/', 'BLOCKED_TARGET'],
    ['http://172.16.0.1/', 'BLOCKED_TARGET'],
    ['http://172.31.255.254/', 'BLOCKED_TARGET'],
    ['http://100.64.0.1/', 'BLOCKED_TARGET'],
    ['http://0.0.0.0/', 'BLOCKED_TARGET'],
    ['http://0/', 'BLOCKED_TARGET'],
    ['http://224.0.0.1/', 'BLOCKED_TARGET'],
    ['http://255.255.255.255/', 'BLOCKED_TARGET'],
    ['http://198.18.0.1/', 'BLOCKED_TARGET'],
    ['http://localhost/', 'BLOCKED_TARGET'],
    ['http://LOCALHOST./', 'BLOCKED_TARGET'],
    ['http://app.localhost:3000/', 'BLOCKED_TARGET'],
    ['http://metadata.google.internal/computeMetadata/v1/', 'BLOCKED_TARGET'],
    ['http://db.corp.internal/', 'BLOCKED_TARGET'],
    ['http://printer.local/', 'BLOCKED_TARGET'],
    ['http://sneaky.example.com/', 'BLOCKED_TARGET'],
    ['http://mixed.example.com/', 'BLOCKED_TARGET'],
    ['http://mixed6.example.com/', 'BLOCKED_TARGET'],
    ['http://meta.example.com/', 'BLOCKED_TARGET'],
    ['http://mapped.example.com/', 'BLOCKED_TARGET'],
    ['http://garbage.example.com/', 'BLOCKED_TARGET'],
    ['file:///etc/passwd', 'UNSUPPORTED_SCHEME'],
    ['data:text/html,x', 'UNSUPPORTED_SCHEME'],
    ['javascript:alert(1)', 'UNSUPPORTED_SCHEME'],
    ['chrome://settings', 'UNSUPPORTED_SCHEME'],
    ['ftp://example.com/', 'UNSUPPORTED_SCHEME'],
    ['about:blank', 'UNSUPPORTED_SCHEME'],
    ['view-source:http://example.com/', 'UNSUPPORTED_SCHEME'],
    ['http://example.com@127.0.0.1/', 'INVALID_URL'],
    ['http://user:pass@example.com/', 'INVALID_URL'],
    ['http://@127.0.0.1/', 'INVALID_URL'],
    ['foo', 'INVALID_URL'],
    ['http://', 'INVALID_URL'],
    ['http://nosuch.example.com/', 'DNS_FAILURE'],
    ['http://empty.example.com/', 'DNS_FAILURE'],
  ];

  it('covers at least 30 cases', () => {
    expect(refused.length).toBeGreaterThanOrEqual(30);
  });

  it.each(refused)('%s → %s', async (url, code) => {
    expect(await codeOf(checkTarget(url, policy()))).toBe(code);
  });

  it('names the host and the address', async () => {
    const err = await checkTarget('http://mixed.example.com/', policy()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WcagaiError);
    const e = err as WcagaiError;
    expect(e.message).toContain('mixed.example.com');
    expect(e.message).toContain('10.0.0.5');
    expect(e.details).toEqual({ host: 'mixed.example.com', address: '10.0.0.5' });
  });

  it('refuses reserved names without asking the resolver', async () => {
    const resolve = fakeResolver({ localhost: ['93.184.215.14'], 'metadata.google.internal': ['93.184.215.14'] });
    await expect(checkTarget('http://localhost/', policy({ resolve }))).rejects.toMatchObject({ code: 'BLOCKED_TARGET' });
    await expect(checkTarget('http://metadata.google.internal/', policy({ resolve }))).rejects.toMatchObject({
      code: 'BLOCKED_TARGET',
    });
    expect(resolve.calls).toEqual([]);
  });

  it('refuses the second check when DNS rebinds from public to private', async () => {
    const answers = [['93.184.215.14'], ['127.0.0.1']];
    let call = 0;
    const resolve: Resolver = async () => answers[Math.min(call++, answers.length - 1)] ?? [];
    const p = policy({ resolve });
    await expect(checkTarget('http://rebind.example.com/', p)).resolves.toEqual(['93.184.215.14']);
    await expect(checkTarget('http://rebind.example.com/', p)).rejects.toMatchObject({ code: 'BLOCKED_TARGET' });
  });

  it('re-validates URL objects', async () => {
    expect(await codeOf(checkTarget(new URL('file:///etc/passwd'), policy()))).toBe('UNSUPPORTED_SCHEME');
  });
});

describe('checkTarget allows', () => {
  it('public IP literals', async () => {
    expect(await checkTarget('https://93.184.215.14/', policy())).toEqual(['93.184.215.14']);
    expect(await checkTarget('http://[2606:4700::1111]/', policy())).toEqual(['2606:4700::1111']);
    expect(await checkTarget('http://8.8.8.8/', policy())).toEqual(['8.8.8.8']);
  });

  it('names resolving to public addresses only', async () => {
    expect(await checkTarget('https://example.com/page', policy())).toEqual(['93.184.215.14']);
    expect(await checkTarget(new URL('https://dual.example.com/'), policy())).toHaveLength(2);
  });

  it('private targets when allowPrivate is true, without resolving', async () => {
    const resolve = fakeResolver(DNS);
    const p = policy({ allowPrivate: true, resolve });
    for (const url of ['http://127.0.0.1/', 'http://localhost:3000/', 'http://sneaky.example.com/', 'http://[::1]/']) {
      expect(await checkTarget(url, p)).toEqual([]);
    }
    expect(resolve.calls).toEqual([]);
  });

  it('allowPrivate still refuses bad schemes and credentials', async () => {
    const p = policy({ allowPrivate: true });
    expect(await codeOf(checkTarget('file:///etc/passwd', p))).toBe('UNSUPPORTED_SCHEME');
    expect(await codeOf(checkTarget('http://a@127.0.0.1/', p))).toBe('INVALID_URL');
  });

  it('hosts listed in allowedHosts (host and host:port forms)', async () => {
    expect(await checkTarget('http://localhost:3000/', policy({ allowedHosts: ['localhost'] }))).toEqual([]);
    expect(await checkTarget('http://localhost:3000/', policy({ allowedHosts: ['localhost:3000'] }))).toEqual([]);
    expect(await checkTarget('http://sneaky.example.com/', policy({ allowedHosts: ['Sneaky.Example.com'] }))).toEqual([]);
    expect(await checkTarget('http://[::1]:8080/', policy({ allowedHosts: ['[::1]:8080'] }))).toEqual([]);
    expect(await checkTarget('http://10.0.0.1/', policy({ allowedHosts: ['10.0.0.1:80'] }))).toEqual([]);
    expect(await codeOf(checkTarget('http://localhost:4000/', policy({ allowedHosts: ['localhost:3000'] })))).toBe(
      'BLOCKED_TARGET',
    );
  });
});

describe('parseTargetUrl', () => {
  it('trims and normalizes numeric IPv4 forms', () => {
    expect(parseTargetUrl('  http://2130706433/x  ').href).toBe('http://127.0.0.1/x');
    expect(parseTargetUrl('http://0177.0.0.1/').hostname).toBe('127.0.0.1');
  });

  it('names the input in the error', () => {
    expect(() => parseTargetUrl('foo')).toThrow('not a URL: "foo"');
    expect(() => parseTargetUrl('http://example.com@127.0.0.1/')).toThrow(/credentials in URLs are not accepted/);
  });
});

describe('isPrivateAddress', () => {
  it.each([
    '0.1.2.3', '10.255.255.255', '100.127.255.255', '127.0.0.1', '169.254.169.254', '172.16.0.0',
    '172.31.255.255', '192.0.0.8', '192.0.2.1', '192.168.0.1', '198.19.255.255', '198.51.100.7',
    '203.0.113.9', '224.0.0.251', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::1', '[::1]', 'fe80::1%eth0', '[fe80::1%25eth0]', 'febf::1', 'fc00::1', 'fd00:ec2::254',
    'ff02::1', '64:ff9b::7f00:1', '64:ff9b::192.168.1.1', '::ffff:127.0.0.1', '::ffff:7f00:1',
    '::ffff:a9fe:a9fe', '::127.0.0.1', '::ffff:0:10.0.0.1', '0:0:0:0:0:ffff:7f00:1', '2001:db8::1',
    '2002:7f00:1::', '2002:c0a8:101::1',
  ])('%s is private', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each([
    '8.8.8.8', '1.1.1.1', '93.184.215.14', '172.32.0.1', '100.128.0.1', '169.255.0.1', '192.169.0.1',
    '223.255.255.255', '2606:4700::1111', '2a00:1450:4001:82a::200e', '::ffff:8.8.8.8', '64:ff9b::808:808',
    '2002:808:808::1',
  ])('%s is public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });

  it('is false for non-IP strings', () => {
    expect(isPrivateAddress('example.com')).toBe(false);
  });
});

describe('hostAllowed', () => {
  const url = (u: string): URL => new URL(u);
  it('matches host names case-insensitively, with or without port', () => {
    expect(hostAllowed(url('http://Intranet.Example.com/'), ['intranet.example.COM'])).toBe(true);
    expect(hostAllowed(url('http://intranet.example.com:8443/'), ['intranet.example.com:8443'])).toBe(true);
    expect(hostAllowed(url('http://intranet.example.com:8443/'), ['intranet.example.com:443'])).toBe(false);
    expect(hostAllowed(url('https://intranet.example.com/'), ['intranet.example.com:443'])).toBe(true);
    expect(hostAllowed(url('http://other.example.com/'), ['intranet.example.com'])).toBe(false);
  });

  it('handles IPv6 with brackets and wildcards', () => {
    expect(hostAllowed(url('http://[::1]/'), ['::1'])).toBe(true);
    expect(hostAllowed(url('http://[::1]/'), ['[0:0:0:0:0:0:0:1]'])).toBe(true);
    expect(hostAllowed(url('http://a.b.staging.test/'), ['*.staging.test'])).toBe(true);
    expect(hostAllowed(url('http://staging.test/'), ['*.staging.test'])).toBe(false);
    expect(hostAllowed(url('http://evilstaging.test/'), ['*.staging.test'])).toBe(false);
  });
});

describe('createCachingResolver', () => {
  it('resolves once within the TTL and again after it, so rebinding is seen once the entry expires', async () => {
    let now = 0;
    const answers = [['93.184.215.14'], ['127.0.0.1']];
    let calls = 0;
    const cached = createCachingResolver(async () => answers[Math.min(calls++, 1)] ?? [], 5_000, () => now);
    const p = policy({ resolve: cached });
    await checkTarget('http://rebind.example.com/', p);
    await checkTarget('http://rebind.example.com/a.css', p);
    expect(calls).toBe(1);
    now = 5_001;
    await expect(checkTarget('http://rebind.example.com/b.js', p)).rejects.toMatchObject({ code: 'BLOCKED_TARGET' });
    expect(calls).toBe(2);
  });

  it('does not cache failures', async () => {
    let calls = 0;
    const cached = createCachingResolver(async () => {
      calls++;
      if (calls === 1) throw new WcagaiError('DNS_FAILURE', 'temporary');
      return ['8.8.8.8'];
    });
    await expect(cached('x.test')).rejects.toMatchObject({ code: 'DNS_FAILURE' });
    await expect(cached('x.test')).resolves.toEqual(['8.8.8.8']);
  });
});

describe('policyFromEnv', () => {
  it('reads both variables', () => {
    const p = policyFromEnv({ ALLOW_PRIVATE_TARGETS: '1', SCAN_ALLOWED_HOSTS: ' a.test , b.test:8080,, ' }, {
      allowPrivate: false,
    });
    expect(p.allowPrivate).toBe(true);
    expect(p.allowedHosts).toEqual(['a.test', 'b.test:8080']);
    expect(policyFromEnv({ ALLOW_PRIVATE_TARGETS: 'false' }, { allowPrivate: true }).allowPrivate).toBe(false);
    expect(policyFromEnv({}, { allowPrivate: true }).allowPrivate).toBe(true);
    expect(policyFromEnv({}, { allowPrivate: false }).allowedHosts).toEqual([]);
  });

  it('rejects unclear booleans', () => {
    expect(() => policyFromEnv({ ALLOW_PRIVATE_TARGETS: 'maybe' }, { allowPrivate: false })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
  });
});

describe('defaultResolver', () => {
  it('resolves through the system resolver', async () => {
    const addresses = await defaultResolver('localhost');
    expect(addresses.length).toBeGreaterThan(0);
    expect(addresses.every((a) => isPrivateAddress(a))).toBe(true);
  });

  it('turns lookup errors into DNS_FAILURE', async () => {
    // .invalid is reserved (RFC 6761) and never resolves.
    await expect(defaultResolver('no-such-host.invalid')).rejects.toMatchObject({ code: 'DNS_FAILURE' });
  });
});
