/**
 * provision mode: destroy through the dist bundle: the confirm guard, removing the custom domain,
 * keeping the bucket unless delete-data, emptying it in pages, and a re-run that is a no-op.
 */
import { PERMISSIONS } from '../fakes/cloudflare/index.js';
import {
  BUCKET,
  HOST,
  expectExit,
  startProvisionFixture,
  type ProvisionFixture,
} from './provision-fixture.js';

let f: ProvisionFixture;

beforeEach(async () => {
  f = await startProvisionFixture();
  expect((await f.run()).code).toBe(0);
  f.cf.log.clear();
});

afterEach(async () => {
  await f.close();
});

function bucket() {
  return f.cf.state.bucket(f.account.id, 'default', BUCKET);
}

describe('provision destroy', () => {
  it('refuses without confirm, or with the wrong one, before any request', async () => {
    for (const confirm of [undefined, 'other-bucket', 'MY-CACHE-NIKS3']) {
      const run = await f.run({ mode: 'destroy', confirm, 'delete-data': 'true' });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(
        /Input 'confirm' must equal the bucket name "my-cache-niks3" for mode: destroy.*Nothing was changed/s,
      );
    }
    expect(f.cf.log.entries).toEqual([]);
    expect(bucket()).toBeDefined();
    expect(f.cf.state.domains.has(HOST)).toBe(true);
  });

  it('removes the custom domain and keeps the bucket with its data by default; a re-run is a no-op', async () => {
    f.cf.state.putObject(bucket()!, 'nar/abc.nar.zst', 'data');
    const run = await f.run({ mode: 'destroy', confirm: BUCKET });
    expectExit(run, 0, f.cf);
    expect(f.cf.state.domains.size).toBe(0);
    expect(bucket()?.objects.size).toBe(1);
    expect(f.cf.log.writes().map((w) => `${w.method} ${w.path}`)).toEqual([
      `DELETE /accounts/${f.account.id}/r2/buckets/${BUCKET}/domains/custom/${HOST}`,
    ]);
    expect(run.outputs['changed']).toBe('true');
    expect(run.outputs['custom-domain-status']).toBe('absent');
    expect(run.summary).toContain('is kept with its data (delete-data is false)');
    expect(run.summary).toMatch(
      /R2 bucket \| my-cache-niks3 \| jurisdiction default, location enam, Standard \| .*\(kept\)/,
    );

    f.cf.log.clear();
    const again = await f.run({ mode: 'destroy', confirm: BUCKET });
    expect(again.code).toBe(0);
    expect(f.cf.log.writes()).toEqual([]);
    expect(again.outputs['changed']).toBe('false');
  });

  it('with delete-data empties the bucket in pages, deletes it, and a re-run is a no-op', async () => {
    const b = bucket()!;
    for (let i = 0; i < 1105; i++)
      f.cf.state.putObject(b, `nar/${String(i).padStart(5, '0')}.nar.zst`, `object ${i}`);
    const run = await f.run({ mode: 'destroy', confirm: BUCKET, 'delete-data': 'true' });
    expectExit(run, 0, f.cf);
    expect(bucket()).toBeUndefined();
    expect(f.cf.state.domains.size).toBe(0);
    // Two full pages were listed and the domain was removed before the bucket.
    const lists = f.cf.log.matching('GET', `/accounts/${f.account.id}/r2/buckets/${BUCKET}/objects`);
    expect(lists.map((l) => l.query['per_page'])).toEqual(['1', '1000', '1000', '1000']);
    const writes = f.cf.log.writes();
    expect(writes.filter((w) => w.path.includes('/objects/'))).toHaveLength(1105);
    const order = writes.filter((w) => !w.path.includes('/objects/')).map((w) => `${w.method} ${w.path}`);
    expect(order).toEqual([
      `DELETE /accounts/${f.account.id}/r2/buckets/${BUCKET}/domains/custom/${HOST}`,
      `DELETE /accounts/${f.account.id}/r2/buckets/${BUCKET}`,
    ]);
    for (const w of writes) expect(w.headers['cf-r2-jurisdiction']).toBe('default');
    expect(JSON.parse(run.outputs['plan'] ?? '[]')).toEqual([
      {
        action: 'delete',
        resource: 'r2-custom-domain',
        name: HOST,
        before: { bucket: BUCKET, zoneId: f.zone.id, enabled: true },
      },
      { action: 'empty', resource: 'r2-bucket', name: BUCKET },
      {
        action: 'delete',
        resource: 'r2-bucket',
        name: BUCKET,
        before: { jurisdiction: 'default', location: 'enam', storageClass: 'Standard' },
      },
    ]);
    expect(run.stdout).toContain('Emptied R2 bucket my-cache-niks3: 1105 objects deleted');

    f.cf.log.clear();
    const again = await f.run({ mode: 'destroy', confirm: BUCKET, 'delete-data': 'true' });
    expect(again.code).toBe(0);
    expect(f.cf.log.writes()).toEqual([]);
    expect(again.outputs['changed']).toBe('false');
    expect(again.summary).toContain('does not exist');
  });

  it('with delete-data and S3 keys empties the bucket through S3, 1000 objects per request', async () => {
    const b = bucket()!;
    for (let i = 0; i < 2500; i++) f.cf.state.putObject(b, `nar/${i}.nar.zst`, 'x');
    f.cf.state.putObject(b, 'odd key & <xml>.narinfo', 'y');
    const keys = f.cf.state.s3Credentials(f.cf.state.addToken({ permissions: [PERMISSIONS.r2ItemWrite] }));
    const run = await f.run(
      {
        mode: 'destroy',
        confirm: BUCKET,
        'delete-data': 'true',
        's3-access-key': keys.accessKeyId,
        's3-secret-key': keys.secretAccessKey,
        's3-endpoint-url': f.cf.s3Url(),
      },
      [keys.secretAccessKey],
    );
    expectExit(run, 0, f.cf);
    expect(bucket()).toBeUndefined();
    const s3 = f.cf.log.s3();
    expect(s3.filter((e) => e.method === 'POST').map((e) => e.status)).toEqual([200, 200, 200]);
    for (const e of s3.filter((e) => e.method === 'POST'))
      expect(e.headers['content-md5']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(s3.filter((e) => e.method === 'GET').map((e) => e.query['list-type'])).toEqual([
      '2',
      '2',
      '2',
      '2',
    ]);
    expect(f.cf.log.writes().filter((w) => w.path.includes('/objects/'))).toEqual([]);
    expect(run.stdout).toContain('Emptied R2 bucket my-cache-niks3: 2501 objects deleted');
    expect(run.stdout).toContain('through the S3 endpoint');
  });

  it('with delete-data and S3 keys aborts incomplete multipart uploads before deleting the bucket', async () => {
    const b = bucket()!;
    f.cf.state.putObject(b, 'nar/done.nar.zst', 'x');
    f.cf.state.addMultipartUpload(b, 'nar/big.nar.zst');
    f.cf.state.addMultipartUpload(b, 'nar/big.nar.zst');
    f.cf.state.addMultipartUpload(b, 'odd & <key>.nar.zst');
    const keys = f.cf.state.s3Credentials(f.cf.state.addToken({ permissions: [PERMISSIONS.r2ItemWrite] }));
    const run = await f.run(
      {
        mode: 'destroy',
        confirm: BUCKET,
        'delete-data': 'true',
        's3-access-key': keys.accessKeyId,
        's3-secret-key': keys.secretAccessKey,
        's3-endpoint-url': f.cf.s3Url(),
      },
      [keys.secretAccessKey],
    );
    expectExit(run, 0, f.cf);
    expect(bucket()).toBeUndefined();
    const aborts = f.cf.log.s3().filter((e) => e.method === 'DELETE' && e.query['uploadId']);
    expect(aborts.map((e) => e.status)).toEqual([204, 204, 204]);
    expect(f.cf.log.s3().some((e) => e.method === 'GET' && 'uploads' in e.query)).toBe(true);
    // Every abort came before the bucket delete.
    const deleteAt = f.cf.log.entries.findIndex(
      (e) =>
        e.service === 'api' &&
        e.method === 'DELETE' &&
        e.path === `/accounts/${f.account.id}/r2/buckets/${BUCKET}`,
    );
    for (const abort of aborts) expect(f.cf.log.entries.indexOf(abort)).toBeLessThan(deleteAt);
    expect(run.stdout).toContain('Aborted 3 incomplete multipart upload(s) in R2 bucket my-cache-niks3');
  });

  it('explains a bucket that cannot be deleted because of in-progress multipart uploads', async () => {
    f.cf.state.addMultipartUpload(bucket()!, 'nar/a.nar.zst');
    f.cf.state.addMultipartUpload(bucket()!, 'nar/b.nar.zst');
    const run = await f.run({ mode: 'destroy', confirm: BUCKET, 'delete-data': 'true' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /delete R2 bucket "my-cache-niks3" answered HTTP 409: the bucket is not empty.*multipart uploads.*Re-run with s3-access-key and s3-secret-key/s,
    );
    // The domain is gone all the same; the bucket and its uploads are intact.
    expect(f.cf.state.domains.size).toBe(0);
    expect(bucket()).toBeDefined();
    expect(run.summary).toContain('Failed');
  });
});
