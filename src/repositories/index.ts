import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { Engine } from '../db/target.js'
import { createAccountTokensRepository, type AccountTokensRepository } from './account-tokens.js'
import { createAuditEventsRepository, type AuditEventsRepository } from './audit-events.js'
import {
  createExternalIdentitiesRepository,
  type ExternalIdentitiesRepository,
} from './external-identities.js'
import { createExternalLoginsRepository, type ExternalLoginsRepository } from './external-logins.js'
import { createIdempotencyKeysRepository, type IdempotencyKeysRepository } from './idempotency-keys.js'
import { createMfaTokensRepository, type MfaTokensRepository } from './mfa-tokens.js'
import { createPasskeysRepository, type PasskeysRepository } from './passkeys.js'
import { createProductsRepository, type ProductsRepository } from './products.js'
import { createReadinessProbeRepository, type ReadinessProbeRepository } from './readiness-probe.js'
import { createRecoveryCodesRepository, type RecoveryCodesRepository } from './recovery-codes.js'
import { createSessionsRepository, type SessionsRepository } from './sessions.js'
import { createSigningKeysRepository, type SigningKeysRepository } from './signing-keys.js'
import { createTotpFactorsRepository, type TotpFactorsRepository } from './totp-factors.js'
import { createUsersRepository, type UsersRepository } from './users.js'
import {
  createWebAuthnChallengesRepository,
  type WebAuthnChallengesRepository,
} from './webauthn-challenges.js'

/** Every repository, bound to one connection or to one transaction. */
export interface Repositories {
  users: UsersRepository
  products: ProductsRepository
  sessions: SessionsRepository
  idempotencyKeys: IdempotencyKeysRepository
  accountTokens: AccountTokensRepository
  auditEvents: AuditEventsRepository
  readinessProbe: ReadinessProbeRepository
  totpFactors: TotpFactorsRepository
  recoveryCodes: RecoveryCodesRepository
  mfaTokens: MfaTokensRepository
  passkeys: PasskeysRepository
  webauthnChallenges: WebAuthnChallengesRepository
  signingKeys: SigningKeysRepository
  externalIdentities: ExternalIdentitiesRepository
  externalLogins: ExternalLoginsRepository
  /**
   * Runs `effect` once the surrounding transaction has committed, and not at all if it rolls
   * back; outside a transaction, at once. For effects beyond the database (the shared revocation
   * set, mail) that must not happen for a change that did not.
   */
  afterCommit(effect: () => Promise<void>): Promise<void>
}

/** The repositories over `db` (the whole database, or one transaction). */
export function createRepositories(
  db: Kysely<Database>,
  engine: Engine,
  afterCommit: Repositories['afterCommit'],
): Repositories {
  return {
    afterCommit,
    users: createUsersRepository(db, engine),
    products: createProductsRepository(db, engine),
    sessions: createSessionsRepository(db),
    idempotencyKeys: createIdempotencyKeysRepository(db),
    accountTokens: createAccountTokensRepository(db),
    auditEvents: createAuditEventsRepository(db),
    readinessProbe: createReadinessProbeRepository(db),
    totpFactors: createTotpFactorsRepository(db, engine),
    recoveryCodes: createRecoveryCodesRepository(db, engine),
    mfaTokens: createMfaTokensRepository(db, engine),
    passkeys: createPasskeysRepository(db, engine),
    webauthnChallenges: createWebAuthnChallengesRepository(db),
    signingKeys: createSigningKeysRepository(db),
    externalIdentities: createExternalIdentitiesRepository(db, engine),
    externalLogins: createExternalLoginsRepository(db),
  }
}

/**
 * Runs `work` in one transaction with repositories bound to it; the effects it registered with
 * afterCommit run once the transaction has committed, in order, and not at all if it rolled back.
 */
export async function runInTransaction<T>(
  db: Kysely<Database>,
  engine: Engine,
  work: (repos: Repositories) => Promise<T>,
): Promise<T> {
  const effects: (() => Promise<void>)[] = []
  const result = await db.transaction().execute((trx) =>
    work(
      createRepositories(trx, engine, async (effect) => {
        effects.push(effect)
      }),
    ),
  )
  for (const effect of effects) await effect()
  return result
}
