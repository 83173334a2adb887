/** The suite's version, sent in every User-Agent as `nix-cache/<version>`. */
export const VERSION = '0.1.0';
export const USER_AGENT = `nix-cache/${VERSION}`;
