/** An error answer of the fake, shaped as the Machines API answers (`{"error": …, "status"?: …}`). */
export class FlyFakeError extends Error {
  readonly httpStatus: number;
  readonly body: Record<string, unknown>;

  constructor(httpStatus: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'FlyFakeError';
    this.httpStatus = httpStatus;
    this.body = { error: message, ...extra };
  }
}

export const notFound = (what: string): FlyFakeError => new FlyFakeError(404, what);
export const badRequest = (what: string): FlyFakeError => new FlyFakeError(400, what);
export const unauthorized = (): FlyFakeError => new FlyFakeError(401, 'Authenticate: token validation error');
export const forbidden = (what = 'unauthorized'): FlyFakeError => new FlyFakeError(403, what);
