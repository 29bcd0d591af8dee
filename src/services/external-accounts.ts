import { randomInt } from 'node:crypto'
import { normalizeEmail } from '../auth/identifiers.js'
import { NO_PASSWORD } from '../auth/passwords.js'
import type { ExternalLoginRecord } from '../repositories/external-logins.js'
import type { Repositories } from '../repositories/index.js'
import type { UserRecord } from '../repositories/users.js'
import type { AccountEmails } from './account-emails.js'
import { assertNamePolicy, insertAccount, NAME_MAX_LENGTH, NAME_TAKEN } from './accounts.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { conflict, DomainError, forbidden } from './errors.js'
import type { ExternalLoginConfig, ExternalLogins } from './external-logins.js'
import type { MfaChallenges } from './mfa-challenges.js'
import { LOGIN_METHODS } from './session-tokens.js'
import type { SessionService, TokenPair } from './sessions.js'

/**
 * The accounts' side of signing in with an identity provider, once the provider's answer is
 * verified (external-logins.ts): which account a provider's person is, linking and unlinking.
 *
 * A provider's person is their account when the identity is linked already. Otherwise an identity
 * is linked to the account of the same email only when both sides say that email is verified: the
 * provider (email_verified) and our record. Either one unverified could be someone else's claim to
 * the address (account pre-hijacking: an attacker registers the victim's email here, or at a
 * provider that does not verify it, and waits), so the sign-in is refused and the owner may log in
 * and link the provider explicitly. A person no account has gets a new one without a password,
 * only with an email the provider verified.
 */
export interface ExternalAccounts {
  /** Spends a sign-in's one-time code: the token pair of its account (found, linked or created). */
  signIn(context: RequestContext, providerId: string, code: string, codeVerifier: string): Promise<TokenPair>
}

export interface ExternalAccountsDependencies {
  config: ExternalLoginConfig
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  logins: ExternalLogins
  sessions: Pick<SessionService, 'start'>
  challenges: Pick<MfaChallenges, 'factorsOf'>
  audit: AuditService
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
  clock: Clock
}

/** A name for a new account: the provider's display name, or the email's local part, made valid. */
function nameFrom(flow: ExternalLoginRecord, email: string): string {
  const wanted = (flow.profile_name ?? email.split('@')[0]!)
    // Stryker disable next-line Regex: any "@" or control character must go; the policy check below is the judge.
    .replace(/[@\uFE6B\uFF20\p{Cc}\p{Cs}]/gu, '')
    .trim()
  return [...(wanted || 'user')].slice(0, NAME_MAX_LENGTH - 6).join('')
}

/** A sign-in refused for a reason the client is told (403), recorded in the audit trail. */
async function refusal(
  deps: ExternalAccountsDependencies,
  context: RequestContext,
  flow: ExternalLoginRecord,
  reason: string,
  error: DomainError,
  userId?: number,
): Promise<DomainError> {
  await deps.audit.record(context, {
    event: 'external_login_failed',
    outcome: 'failure',
    userId,
    details: { provider: flow.provider, reason },
  })
  return error
}

/** A new account for a person the provider vouched for: a free name (suffixed when taken), no password. */
async function createAccountFor(
  repos: Repositories,
  flow: ExternalLoginRecord,
  email: string,
): Promise<UserRecord> {
  const base = nameFrom(flow, email)
  for (let attempt = 0; ; attempt++) {
    const name = attempt === 0 ? base : `${base}-${randomInt(10_000, 100_000)}`
    assertNamePolicy(name)
    try {
      return await insertAccount(repos, { name, email, passwordHash: NO_PASSWORD, emailVerified: true })
    } catch (error) {
      // A taken name gets a suffix; a taken email (a registration at the same moment) is final.
      if (!(error instanceof DomainError && error.message === NAME_TAKEN) || attempt === 5) throw error
    }
  }
}

export function createExternalAccounts(deps: ExternalAccountsDependencies): ExternalAccounts {
  return {
    async signIn(context, providerId, code, codeVerifier) {
      const flow = await deps.logins.spendCode(context, providerId, code, codeVerifier, 'sign_in')
      const found = await accountOf(deps, context, flow)
      // The owner hears of a new way into the account even when this sign-in goes no further.
      if (found.linked)
        deps.notices.sendSecurityNotice(
          found.userId,
          { kind: 'identity_linked', provider: deps.logins.provider(providerId).name },
          context.log,
        )
      const user = await mayStartSession(deps, context, flow, found.userId)
      const pair = await deps.sessions.start(user, context, LOGIN_METHODS.external)
      await deps.audit.record(context, {
        event: 'external_login_succeeded',
        outcome: 'success',
        userId: user.id,
        details: {
          provider: providerId,
          ...(found.linked ? { linked: true } : {}),
          ...(found.created ? { created: true } : {}),
        },
      })
      return pair
    },
  }
}

interface FoundAccount {
  userId: number
  /** The identity was linked to an existing account by this sign-in. */
  linked: boolean
  /** The account was made by this sign-in. */
  created: boolean
}

/** The account a vouched sign-in is, linking or creating it when the rules allow; else a refusal. */
async function accountOf(
  deps: ExternalAccountsDependencies,
  context: RequestContext,
  flow: ExternalLoginRecord,
): Promise<FoundAccount> {
  const linked = await deps.repos.externalIdentities.find(flow.provider, flow.subject!)
  if (linked) {
    await deps.repos.externalIdentities.recordUse(linked.id, flow.email, dateOf(deps.clock))
    return { userId: linked.user_id, linked: false, created: false }
  }
  if (flow.email === null)
    throw await refusal(
      deps,
      context,
      flow,
      'no_email',
      forbidden(
        'The provider did not give an email address, which a new sign-in needs: allow it at the provider.',
      ),
    )
  const email = normalizeEmail(flow.email)
  const existing = await deps.repos.users.findCredentialsByLogin({ by: 'email', key: email })
  if (existing && !(flow.email_verified && existing.email_verified))
    throw await refusal(
      deps,
      context,
      flow,
      'unverified_email',
      conflict(
        'An account with this email address exists, and the provider or this server has not verified the address: ' +
          'log in to that account another way, then link this provider from the account settings.',
      ),
      existing.id,
    )
  if (!existing && !flow.email_verified)
    throw await refusal(
      deps,
      context,
      flow,
      'unverified_email',
      forbidden(
        'The provider has not verified your email address: verify it there first, or register with a password.',
      ),
    )
  return linkOrCreate(deps, context, flow, email, existing?.id)
}

/** Links the identity to the account of its email (`userId`), or to a new account; one transaction. */
function linkOrCreate(
  deps: ExternalAccountsDependencies,
  context: RequestContext,
  flow: ExternalLoginRecord,
  email: string,
  userId: number | undefined,
): Promise<FoundAccount> {
  return deps.transaction(async (txRepos) => {
    const id = userId ?? (await createAccountFor(txRepos, flow, email)).id
    const identity = await txRepos.externalIdentities.insert({
      userId: id,
      provider: flow.provider,
      subject: flow.subject!,
      email,
      now: dateOf(deps.clock),
    })
    // The account has an identity of this provider already (one per provider).
    if (identity === undefined)
      throw conflict(
        'Your account is linked to another account of this provider: sign in with that one, or unlink it first.',
      )
    if (userId === undefined)
      await deps.audit.record(
        context,
        { event: 'user_registered', outcome: 'success', userId: id, details: { provider: flow.provider } },
        txRepos,
      )
    return { userId: id, linked: userId !== undefined, created: userId === undefined }
  })
}

/** The account, when a session may start for it: active, verified when required, no second factor. */
async function mayStartSession(
  deps: ExternalAccountsDependencies,
  context: RequestContext,
  flow: ExternalLoginRecord,
  userId: number,
): Promise<UserRecord> {
  const user = await deps.repos.users.findById(userId)
  if (!user?.is_active)
    throw await refusal(deps, context, flow, 'inactive', forbidden('This account is deactivated.'), userId)
  if (deps.config.requireEmailVerification && !user.email_verified)
    throw await refusal(
      deps,
      context,
      flow,
      'email_not_verified',
      forbidden(
        'The email address of this account is not verified yet: follow the link in the email we sent.',
      ),
      userId,
    )
  // A second factor protects the account whichever way its owner signs in; a provider's sign-in
  // does not prove it (and has no password for the second step to build on).
  if ((await deps.challenges.factorsOf(userId)).length > 0)
    throw await refusal(
      deps,
      context,
      flow,
      'second_factor',
      forbidden(
        'This account has a second factor, which a sign-in with a provider does not prove: log in with your password or a passkey.',
      ),
      userId,
    )
  return user
}
