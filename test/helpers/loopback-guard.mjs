// Refuses every network connection that does not go to this machine's loopback addresses, so no
// test (or action bundle started by a test) can reach a real cloud API by mistake. Loaded by jest
// (setupFiles) and into each child process through NODE_OPTIONS=--import.
import net from 'node:net';

const allowed = (host) =>
  host === undefined ||
  host === 'localhost' ||
  host === '::1' ||
  /^127\./.test(host) ||
  host === '' ||
  host.startsWith('/');

const original = net.Socket.prototype.connect;
if (!original.__nixCacheGuard) {
  const guarded = function (...args) {
    const first = args[0];
    let host;
    if (first && typeof first === 'object' && !Array.isArray(first)) host = first.path ?? first.host;
    else if (typeof first === 'number') host = typeof args[1] === 'string' ? args[1] : 'localhost';
    else if (typeof first === 'string') host = first; // unix socket path
    if (!allowed(host)) {
      const error = new Error(
        `test network guard: refused a connection to ${host} (only loopback is allowed in tests)`,
      );
      error.code = 'ECONNREFUSED';
      process.nextTick(() => this.destroy(error));
      return this;
    }
    return original.apply(this, args);
  };
  guarded.__nixCacheGuard = true;
  net.Socket.prototype.connect = guarded;
}
