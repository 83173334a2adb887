/**
 * The state of the fake Fly platform: organisations, tokens, apps (one global name space), their
 * IPs, secrets and machines, on one virtual clock. The HTTP layer (server.ts) translates requests
 * into calls on this and `FlyFakeError`s back into answers; tests may read and seed it directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FakeApp } from './apps.js';
import { FakeClock } from './clock.js';
import { FlyFakeError, forbidden, notFound } from './fake-error.js';
import type { FakeMachine, ImageBehaviour } from './machines.js';
import { TokenRegistry, type FakeTokenSpec, type RegisteredToken } from './tokens.js';

export interface FakeOrg {
  readonly id: string;
  readonly slug: string;
  readonly name: string;
  readonly type: 'PERSONAL' | 'SHARED';
}

/** Behaviour knobs; every point the spec leaves open is one of these. */
export interface FakeFlySettings {
  /** Regions a machine may be created in. */
  readonly regions: readonly string[];
  /** Virtual ms from launch to `started`. */
  readonly bootDelayMs: number;
  /** Behaviour per image reference; others get `defaultImageBehaviour`. */
  readonly images: Readonly<Record<string, ImageBehaviour>>;
  readonly defaultImageBehaviour: ImageBehaviour;
  /** GETs of a new app that still answer "not visible" (fly.md §3.5). */
  readonly appVisibilityLag: number;
  readonly appVisibilityLagStatus: 404 | 401;
  /** Virtual ms between `DELETE /v1/apps/{app}` and the app being gone. */
  readonly appDeleteDelayMs: number;
  /** List calls a just-created machine is missing from (replication lag). */
  readonly listLag: number;
  /** What a deploy token gets for an app outside its scope (fly.md §10 Q3). */
  readonly deployTokenForeignAppStatus: 403 | 404;
  readonly deployTokenCanDeleteApp: boolean;
  /** A second shared_v4 allocation: the same address again, or an error (fly.md §10 Q16). */
  readonly sharedV4Repeat: 'same' | 'error';
  /** `min_secrets_version` above the app's version: 400, or ignored (fly.md §10 Q6). */
  readonly minSecretsVersionAhead: 'reject' | 'ignore';
  /** A file whose secret is missing or not base64: 400 at create, or a machine that fails to boot (§10 Q7). */
  readonly badFileSecret: 'reject' | 'fail';
  /** `GET /v1/tokens/current` for user tokens: a `user` entry without org, or 401 (§10 Q4). */
  readonly userTokenIntrospection: 'user' | 'unauthorized';
  /** HTTP status of a GraphQL answer to an unknown token (the body has `errors` either way). */
  readonly graphqlUnauthenticatedStatus: 200 | 401;
  /** Lease TTL when the client gives none (seconds). */
  readonly defaultLeaseTtlSeconds: number;
  /** Enforce the documented rate limits (fly.md §3.3), in real time. Off by default. */
  readonly rateLimit: boolean;
  /**
   * App create's `idempotency_key` (fly.md §4.3, §10 Q2): only the API reference has it; the real
   * API is not known to honour it, so by default a retry with the same key gets 422 `name_taken`.
   */
  readonly appCreateIdempotencyKey: 'ignored' | 'honoured';
  /**
   * The secrets store is eventually consistent (fly.md §3.5, §4.5.3): this many list calls after a
   * write still answer the secrets as they were before it, unless the list asks for
   * `min_version`/`version` at least the written one (which also catches the store up).
   */
  readonly secretsStaleReads: number;
  /**
   * Which query parameter of the secrets list the store honours as the minimum version: the API
   * reference's `min_version`, or fly-go's `version` (fly.md §4.5.2, §10 Q5; unconfirmed).
   */
  readonly secretsMinVersionParam: 'min_version' | 'version';
  /**
   * The undocumented `apps` field of `/v1/tokens/current` for org tokens (fly.md §10 Q4): empty,
   * or the apps of the org (so it looks like an app-scoped token).
   */
  readonly orgTokenApps: 'empty' | 'org-apps';
  /**
   * What `incomplete_config` of a machine on an unhealthy host holds (unconfirmed): the metadata
   * of its config, or nothing.
   */
  readonly incompleteConfig: 'with-metadata' | 'empty';
}

export const DEFAULT_SETTINGS: FakeFlySettings = {
  regions: [
    'iad',
    'ord',
    'lax',
    'sjc',
    'ewr',
    'fra',
    'ams',
    'lhr',
    'cdg',
    'arn',
    'waw',
    'nrt',
    'sin',
    'syd',
    'gru',
    'yyz',
    'dfw',
    'sea',
    'bom',
    'jnb',
  ],
  bootDelayMs: 2_000,
  images: {},
  defaultImageBehaviour: 'healthy',
  appVisibilityLag: 0,
  appVisibilityLagStatus: 404,
  appDeleteDelayMs: 3_000,
  listLag: 0,
  deployTokenForeignAppStatus: 404,
  deployTokenCanDeleteApp: false,
  sharedV4Repeat: 'same',
  minSecretsVersionAhead: 'reject',
  badFileSecret: 'fail',
  userTokenIntrospection: 'user',
  graphqlUnauthenticatedStatus: 200,
  defaultLeaseTtlSeconds: 30,
  rateLimit: false,
  appCreateIdempotencyKey: 'ignored',
  secretsStaleReads: 1,
  secretsMinVersionParam: 'min_version',
  orgTokenApps: 'empty',
  incompleteConfig: 'with-metadata',
};

export class FlyWorld {
  readonly clock: FakeClock;
  readonly settings: FakeFlySettings;
  readonly orgs = new Map<string, FakeOrg>();
  readonly tokens = new TokenRegistry();
  /** Every app by name (one global name space across orgs). */
  readonly apps = new Map<string, FakeApp>();
  /** App-create idempotency keys -> app name (used only when the setting honours them). */
  readonly idempotencyKeys = new Map<string, string>();
  /**
   * The registry: image reference (tag) -> the digest it points at now. A machine version records
   * the digest of its image when it is created or updated (what Fly pulls); `repushTag` moves a tag.
   */
  readonly imageDigests = new Map<string, string>();
  private ipCounter = 0;

  constructor(clock: FakeClock, settings: FakeFlySettings) {
    this.clock = clock;
    this.settings = settings;
  }

  addOrg(org: Partial<FakeOrg> & { slug: string }): FakeOrg {
    const full: FakeOrg = {
      id: org.id ?? randomBytes(6).toString('hex'),
      name: org.name ?? org.slug,
      type: org.type ?? 'SHARED',
      slug: org.slug,
    };
    this.orgs.set(full.slug, full);
    return full;
  }

  addToken(text: string, spec: FakeTokenSpec): RegisteredToken {
    return this.tokens.add(text, spec);
  }

  /** Drops apps whose deletion has completed. */
  purge(): void {
    const now = this.clock.now();
    for (const [name, app] of this.apps)
      if (app.deleteAt !== undefined && app.deleteAt <= now) this.apps.delete(name);
  }

  /** Resolves an org slug as the token may use it (`personal` is the token's personal org). */
  orgFor(token: RegisteredToken, slug: string): FakeOrg {
    const visible = TokenRegistry.orgsOf(token)
      .map((s) => this.orgs.get(s))
      .filter((o): o is FakeOrg => o !== undefined);
    const org =
      slug === 'personal' ? visible.find((o) => o.type === 'PERSONAL') : visible.find((o) => o.slug === slug);
    if (!org) {
      if (slug !== 'personal' && !this.orgs.has(slug)) throw notFound(`organization ${slug} not found`);
      throw forbidden(`not authorized to access organization ${slug}`);
    }
    return org;
  }

  /** The app a token may address, or the error the API gives. */
  appFor(token: RegisteredToken, name: string, write: boolean): FakeApp {
    this.purge();
    if (token.kind === 'deploy' && !(token.apps ?? []).includes(name)) {
      throw this.settings.deployTokenForeignAppStatus === 403 ? forbidden() : notFound('Could not find App');
    }
    const app = this.apps.get(name);
    if (!app) throw notFound('Could not find App');
    if (token.kind !== 'deploy' && !TokenRegistry.orgsOf(token).includes(app.org)) throw forbidden();
    if (write && token.kind === 'readonly') throw forbidden('read-only token');
    return app;
  }

  machineOf(app: FakeApp, id: string): FakeMachine {
    const machine = app.machines.get(id);
    if (!machine || machine.state === 'destroyed') throw notFound(`machine not found: ${id}`);
    return machine;
  }

  /** The digest an image reference resolves to now (a pinned `@sha256:` is its own digest). */
  digestOf(image: string): string {
    const pinned = /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
    if (pinned) return pinned;
    let digest = this.imageDigests.get(image);
    if (!digest) {
      digest = `sha256:${createHash('sha256').update(image).digest('hex')}`;
      this.imageDigests.set(image, digest);
    }
    return digest;
  }

  /** Pushes the tag again with new content: later pulls get a new digest; running machines keep theirs. */
  repushTag(image: string): string {
    const digest = `sha256:${createHash('sha256')
      .update(`${image} ${randomBytes(8).toString('hex')}`)
      .digest('hex')}`;
    this.imageDigests.set(image, digest);
    return digest;
  }

  behaviourOf(image: string): ImageBehaviour {
    return this.settings.images[image] ?? this.settings.defaultImageBehaviour;
  }

  /** A fresh address of a kind (v6 and private_v6 unique per call). */
  nextIp(type: 'v4' | 'v6' | 'shared_v4' | 'private_v6', app: FakeApp): string {
    const n = ++this.ipCounter;
    switch (type) {
      case 'v6':
        return `2a09:8280:1::${n.toString(16)}:${app.id.slice(0, 4)}:0`;
      case 'private_v6':
        return `fdaa:0:1:a7b::${n.toString(16)}`;
      case 'v4':
        return `137.66.${Math.floor(n / 256) % 256}.${n % 256}`;
      case 'shared_v4':
        return `66.241.124.${(parseInt(app.id.slice(0, 2), 16) % 250) + 1}`;
    }
  }

  /** Seeds an app owned by another organisation, so its name is taken (GET 403, POST 422). */
  seedTakenName(name: string): void {
    if (!this.orgs.has('someone-else')) this.addOrg({ slug: 'someone-else', name: 'Someone Else' });
    this.apps.set(name, new FakeApp({ name, org: 'someone-else', now: this.clock.now() }));
  }
}

export { FlyFakeError };
