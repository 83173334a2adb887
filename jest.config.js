/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.check.json' }],
  },
  // Coverage of what runs in-process (the action bundles run as child processes are not counted).
  coverageProvider: 'v8',
  collectCoverageFrom: ['src/**/*.ts'],
  coverageReporters: ['text-summary'],
  // Enforced on every full `npm test`; raise these as coverage grows, never lower them.
  coverageThreshold: { global: { statements: 77, branches: 69, functions: 78, lines: 77 } },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  setupFiles: ['<rootDir>/test/helpers/loopback-guard.mjs'],
  testTimeout: 120000,
  maxWorkers: 2,
};
