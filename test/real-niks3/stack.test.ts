/** The real stack itself: niks3 v1.7.0 boots against PostgreSQL and versitygw, and the bucket reads publicly. */
import { describeRealNiks3 } from './tools.js';
import { startRealNiks3, type RealNiks3 } from './stack.js';

describeRealNiks3('real niks3 stack', () => {
  let stack: RealNiks3;
  beforeAll(async () => {
    stack = await startRealNiks3({ oidc: true });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('answers health and cache-config, and the bucket serves nix-cache-info anonymously', async () => {
    const health = await fetch(`${stack.url}/health`);
    expect(health.status).toBe(200);
    const config = (await (await fetch(`${stack.url}/api/cache-config`)).json()) as Record<string, unknown>;
    expect(config).toEqual(expect.objectContaining({ public_keys: stack.publicKeys }));
    const info = await fetch(`${stack.publicUrl}/nix-cache-info`);
    expect(info.status).toBe(200);
    expect(await info.text()).toMatch(/StoreDir: \/nix\/store/);
    // Writes without a signature are refused (versitygw checks SigV4).
    const put = await fetch(`${stack.publicUrl}/unsigned`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(403);
  });
});
