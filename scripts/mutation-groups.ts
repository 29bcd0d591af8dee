/**
 * What `npm run mutate` mutates, and which test files judge each part.
 *
 * A mutant is judged only by the test files of its group, and among those (Stryker's per-test
 * coverage, a test file being one "test" to the tap runner) only by the files that run its code.
 * Groups keep a run within the hour on a 2-core machine: without them a mutant in the users
 * repository would be run against every test file that registers a user, and each that survives
 * would cost the whole suite. The suites left out of every group (properties, faults, processes,
 * the browser) exercise everything and judge nothing in particular; they run in `npm test`.
 */
export interface MutationGroup {
  /** Source files (globs) whose mutants this group judges. */
  mutate: string[]
  /** The test files that judge them. */
  tests: string[]
  /**
   * The group's code is SQL (the repositories): its tests run on every engine with a URL, as in
   * CI, since a query can be right on one engine and wrong on another. The other groups' code
   * never speaks to the database, so their tests run on SQLite (with Redis, when TEST_REDIS_URL
   * is set): a mutant there cannot fare differently on another engine, and three engines would
   * triple the run.
   */
  sql?: boolean
}

export const mutationGroups: Record<string, MutationGroup> = {
  tokens: {
    mutate: ['src/auth/tokens.ts', 'src/services/authentication.ts', 'src/services/clock.ts'],
    tests: ['test/routes/auth/*.test.ts', 'test/auth/tokens.test.ts', 'test/services/authentication.test.ts'],
  },
  revocation: {
    mutate: ['src/auth/revocation.ts', 'src/auth/known-sessions.ts'],
    tests: [
      'test/auth/revocation/*.test.ts',
      'test/auth/revocation-list.test.ts',
      'test/auth/known-sessions.test.ts',
      'test/auth/revocation-sharing.test.ts',
      'test/auth/revocation-close.test.ts',
    ],
  },
  credentials: {
    mutate: [
      'src/auth/passwords.ts',
      'src/auth/common-passwords.ts',
      'src/auth/identifiers.ts',
      'src/auth/opaque-tokens.ts',
    ],
    tests: [
      'test/auth/passwords.test.ts',
      'test/auth/credentials.test.ts',
      'test/routes/auth/login.test.ts',
      'test/routes/auth/login-names.test.ts',
      'test/routes/users/registration.test.ts',
      'test/routes/account/*.test.ts',
    ],
  },
  sessions: {
    mutate: ['src/services/sessions.ts', 'src/services/session-tokens.ts', 'src/services/login.ts'],
    tests: [
      'test/routes/sessions/*.test.ts',
      'test/routes/auth/login.test.ts',
      'test/routes/auth/issued-sessions.test.ts',
      'test/routes/audit/audit-trail.test.ts',
      'test/routes/account/verification.test.ts',
      'test/auth/passwords.test.ts',
      // The login that answers mfa_required, and the session a second factor opens.
      'test/routes/mfa/totp-login.test.ts',
    ],
  },
  'second-factors': {
    mutate: [
      'src/auth/data-encryption.ts',
      'src/auth/totp.ts',
      'src/auth/recovery-codes.ts',
      'src/auth/qr-code.ts',
      'src/auth/webauthn.ts',
    ],
    tests: [
      'test/auth/data-encryption.test.ts',
      'test/auth/totp.test.ts',
      'test/auth/recovery-codes.test.ts',
      'test/auth/qr-code.test.ts',
      'test/auth/webauthn.test.ts',
    ],
  },
  'mfa-login': {
    mutate: [
      'src/services/mfa-login.ts',
      'src/services/mfa-challenges.ts',
      'src/services/factor-proofs.ts',
      'src/services/factor-rules.ts',
      'src/services/enrolment-policy.ts',
      'src/services/reauthentication.ts',
    ],
    tests: ['test/routes/mfa/*.test.ts', 'test/routes/passkeys/*.test.ts'],
  },
  passkeys: {
    mutate: [
      'src/services/second-factors.ts',
      'src/services/passkeys.ts',
      'src/services/passkey-login.ts',
      'src/services/webauthn-ceremonies.ts',
    ],
    tests: ['test/routes/mfa/*.test.ts', 'test/routes/passkeys/*.test.ts'],
  },
  'factor-repositories': {
    sql: true,
    mutate: [
      'src/repositories/totp-factors.ts',
      'src/repositories/recovery-codes.ts',
      'src/repositories/mfa-tokens.ts',
      'src/repositories/user-lock.ts',
      'src/repositories/passkeys.ts',
      'src/repositories/webauthn-challenges.ts',
    ],
    tests: [
      'test/repositories/totp-factors.test.ts',
      'test/repositories/recovery-codes.test.ts',
      'test/repositories/mfa-tokens.test.ts',
      'test/repositories/passkeys.test.ts',
      'test/repositories/webauthn-challenges.test.ts',
    ],
  },
  'signing-keys': {
    mutate: [
      'src/auth/signing-keys.ts',
      'src/services/signing-keys.ts',
      'src/services/stored-signing-keys.ts',
      'src/services/key-states.ts',
    ],
    tests: [
      'test/auth/signing-keys.test.ts',
      'test/routes/keys/*.test.ts',
      'test/routes/auth/asymmetric-keys.test.ts',
      'test/auth/tokens.test.ts',
      'test/cli/keys.test.ts',
    ],
  },
  'key-repository': {
    sql: true,
    mutate: ['src/repositories/signing-keys.ts'],
    tests: ['test/repositories/signing-keys.test.ts'],
  },
  'external-logins': {
    mutate: [
      'src/auth/oidc-client.ts',
      'src/config/identity-providers.ts',
      'src/services/external-logins.ts',
      'src/services/external-accounts.ts',
      'src/services/external-identities.ts',
    ],
    // The identities' tests on SQLite: against the real test provider, in the test process.
    tests: [
      'test/routes/identities/sign-in.test.ts',
      'test/routes/identities/refusals.test.ts',
      'test/routes/identities/linking.test.ts',
      'test/routes/identities/outage.test.ts',
      'test/routes/identities/details.test.ts',
      'test/routes/identities/lifecycle.test.ts',
      'test/routes/identities/new-accounts.test.ts',
      'test/auth/oidc-client.test.ts',
      'test/config/identity-providers.test.ts',
    ],
  },
  'identity-repositories': {
    sql: true,
    mutate: ['src/repositories/external-identities.ts', 'src/repositories/external-logins.ts'],
    tests: ['test/repositories/external-identities.test.ts'],
  },
  'rate-limit': {
    mutate: ['src/rate-limit/*.ts', 'src/services/attempts.ts'],
    // limitAttempt: the limit a second-factor guess counts against once its account is known.
    tests: ['test/rate-limit/*.test.ts', 'test/routes/mfa/attempt-limits.test.ts'],
  },
  users: {
    mutate: [
      'src/services/users.ts',
      'src/services/user-changes.ts',
      'src/services/accounts.ts',
      'src/services/first-admin.ts',
      'src/services/policies.ts',
    ],
    tests: [
      'test/routes/users/*.test.ts',
      'test/routes/audit/audit-trail.test.ts',
      'test/services/accounts.test.ts',
      'test/services/policies.test.ts',
    ],
  },
  'account-links': {
    mutate: [
      'src/services/password-change.ts',
      'src/services/password-recovery.ts',
      'src/services/email-verification.ts',
      'src/services/account-emails.ts',
    ],
    tests: [
      'test/routes/account/*.test.ts',
      'test/routes/audit/audit-trail.test.ts',
      'test/services/account-links.test.ts',
    ],
  },
  products: {
    mutate: ['src/services/products.ts'],
    tests: ['test/routes/products/*.test.ts'],
  },
  'lists-and-retries': {
    mutate: ['src/services/pagination.ts', 'src/services/idempotency.ts'],
    tests: [
      'test/routes/products/list.test.ts',
      'test/routes/products/sorting-and-pages.test.ts',
      'test/routes/products/filters.test.ts',
      'test/routes/products/idempotency.test.ts',
      'test/routes/users/list.test.ts',
      'test/routes/audit/audit-listing.test.ts',
      'test/services/pagination.test.ts',
      'test/services/idempotency.test.ts',
    ],
  },
  repositories: {
    sql: true,
    mutate: [
      'src/repositories/account-tokens.ts',
      'src/repositories/audit-events.ts',
      'src/repositories/idempotency-keys.ts',
      'src/repositories/index.ts',
      'src/repositories/products.ts',
      'src/repositories/readiness-probe.ts',
      'src/repositories/sessions.ts',
      'src/repositories/users.ts',
    ],
    tests: [
      'test/repositories/account-tokens.test.ts',
      'test/repositories/audit-events.test.ts',
      'test/repositories/idempotency-keys.test.ts',
      'test/repositories/products.test.ts',
      'test/repositories/sessions.test.ts',
      'test/repositories/transactions.test.ts',
      'test/repositories/users.test.ts',
    ],
  },
}
