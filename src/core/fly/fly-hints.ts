/** The hints of Fly's error answers, for both Fly remotes (Machines API and GraphQL). */
/**
 * What to tell the user about an error answer. For 401/403 it names the token power the operation
 * needs: what a token may do is only guessed from `/v1/tokens/current` (an undocumented field), so
 * the suite tries the operation and explains a refusal here.
 */
export function flyHint(status: number, operation = ''): string | undefined {
  if (status === 401 || status === 403) {
    const power = tokenPower(operation);
    const base =
      status === 401
        ? 'Check fly-api-token: pass the whole output of `fly tokens create` (including `FlyV1 `), and that it has not expired'
        : 'The token may not do this';
    return power
      ? `${base}; ${power}`
      : `${base}: an org token (\`fly tokens create org\`) can create and delete apps, a deploy token only manage its own app`;
  }
  if (status === 429) return 'Fly rate-limited the calls; wait a minute and run again';
  if (status >= 500) return 'Fly had a platform error; run again later (see https://status.flyio.net)';
  return undefined;
}

/** The token power an operation needs, in words, or undefined for reads. */
export function tokenPower(operation: string): string | undefined {
  if (/^create app\b/.test(operation))
    return 'creating an app needs an org token of its organisation (`fly tokens create org`); a deploy token cannot create apps';
  if (/^delete app\b/.test(operation))
    return 'deleting the app needs an org token (`fly tokens create org`); a deploy token cannot delete its app';
  if (/secrets/.test(operation))
    return 'setting secrets needs a token that may deploy this app (`fly tokens create deploy -a APP`, or an org token)';
  if (/IP/.test(operation))
    return 'allocating IPs needs a token that may deploy this app (an org token, or a deploy token of the app)';
  if (/machine|lease/.test(operation))
    return 'managing machines needs a token that may deploy this app (`fly tokens create deploy -a APP`, or an org token)';
  return undefined;
}
