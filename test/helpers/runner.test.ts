import { startOidcIssuer } from './oidc-issuer.js';
import { findLeaks } from './secret-scan.js';
import { parseFileCommands, runAction } from './run-action.js';

describe('runner helper', () => {
  it('parses heredoc and key=value file commands', () => {
    expect(parseFileCommands('a<<D1\nx\ny\nD1\nb=2\n')).toEqual({ a: 'x\ny', b: '2' });
  });

  it('catches a planted leak in every form, but not behind ::add-mask::', () => {
    const secret = 'super-secret-token-value-123';
    expect(findLeaks([secret], { stdout: `::add-mask::${secret}\nfine` })).toEqual([]);
    expect(findLeaks([secret], { stdout: `oops ${secret}` })).toHaveLength(1);
    expect(findLeaks([secret], { summary: Buffer.from(secret).toString('base64') })).toHaveLength(1);
    expect(
      findLeaks([secret], { outputs: JSON.stringify({ x: `{"t":${JSON.stringify(secret)}}` }) }),
    ).toHaveLength(1);
    expect(findLeaks(['a b+c/d=secret!'], { stderr: encodeURIComponent('a b+c/d=secret!') })).toHaveLength(1);
  });

  it('mints RS256 tokens through the runner token endpoint', async () => {
    const issuer = await startOidcIssuer();
    try {
      const response = await fetch(
        `${issuer.requestUrl}&audience=${encodeURIComponent('https://x.example')}`,
        {
          headers: { authorization: `Bearer ${issuer.requestToken}` },
        },
      );
      const { value } = (await response.json()) as { value: string };
      const claims = JSON.parse(Buffer.from(value.split('.')[1] ?? '', 'base64url').toString()) as Record<
        string,
        unknown
      >;
      expect(claims['aud']).toBe('https://x.example');
      expect(claims['iss']).toBe(issuer.issuer);
      const jwks = (await (await fetch(`${issuer.issuer}/.well-known/jwks`)).json()) as { keys: unknown[] };
      expect(jwks.keys).toHaveLength(1);
      const refused = await fetch(`${issuer.requestUrl}&audience=x`, {
        headers: { authorization: 'Bearer nope' },
      });
      expect(refused.status).toBe(401);
    } finally {
      await issuer.close();
    }
  });

  it('refuses non-loopback connections in tests', async () => {
    await expect(fetch('http://192.0.2.1:9/')).rejects.toThrow();
  });

  it('runs a bundle as a runner and reads its failure', async () => {
    const run = await runAction('gc', { inputs: {} });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/server-url/);
  });
});
