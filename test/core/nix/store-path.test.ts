import { ConfigurationError } from '../../../src/core/errors.js';
import {
  compareBytes,
  isStorePath,
  parseStorePath,
  storePathBaseName,
  storePathHash,
  toFullStorePath,
  topLevelStorePath,
} from '../../../src/core/nix/store-path.js';

const HELLO = '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1';

describe('store paths', () => {
  it('parses hash and name', () => {
    expect(parseStorePath(HELLO)).toEqual({
      path: HELLO,
      hash: '26xbg1ndr7hbcncrlf9nhx5is2b25d13',
      name: 'hello-2.12.1',
    });
    expect(parseStorePath('/tmp/s/26xbg1ndr7hbcncrlf9nhx5is2b25d13-x', '/tmp/s/').name).toBe('x');
    expect(storePathHash(HELLO)).toBe('26xbg1ndr7hbcncrlf9nhx5is2b25d13');
    expect(storePathHash('26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1')).toBe(
      '26xbg1ndr7hbcncrlf9nhx5is2b25d13',
    );
    expect(storePathBaseName(HELLO)).toBe('26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1');
    expect(toFullStorePath('26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1')).toBe(HELLO);
    expect(toFullStorePath(HELLO, '/elsewhere')).toBe(HELLO);
  });

  it.each([
    ['/nix/store', /does not start with/],
    ['/usr/bin/hello', /does not start with \/nix\/store\//],
    [`${HELLO}/bin/hello`, /points inside one \(use .*hello-2\.12\.1\)/],
    ['/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d1-short', /hash part/],
    ['/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d1e-bad', /hash part/],
    ['/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-', /name is empty/],
    ['/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13', /no "-"/],
    ['/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-a b', /characters Nix does not allow/],
    [`/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-${'x'.repeat(212)}`, /longer than 211/],
  ])('refuses %s', (path, message) => {
    expect(() => parseStorePath(path)).toThrow(ConfigurationError);
    expect(() => parseStorePath(path)).toThrow(message);
    expect(isStorePath(path)).toBe(false);
  });

  it('finds the top-level store path of a path inside one', () => {
    expect(topLevelStorePath(`${HELLO}/bin/hello`)).toBe(HELLO);
    expect(topLevelStorePath(HELLO)).toBe(HELLO);
    expect(topLevelStorePath('/nix/store/')).toBeUndefined();
    expect(topLevelStorePath('/home/x/result')).toBeUndefined();
  });

  it('sorts byte-wise, not by UTF-16 code units', () => {
    // U+FF5E (3 bytes EF BD 9E) vs U+1F600 (4 bytes F0 9F 98 80): UTF-16 puts the emoji first.
    const names = ['\u{1F600}', '\uFF5E', 'Z', 'a'];
    expect([...names].sort(compareBytes)).toEqual(['Z', 'a', '\uFF5E', '\u{1F600}']);
  });
});
