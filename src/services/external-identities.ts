import { normalizeEmail } from '../auth/identifiers.js'
import { hasPassword } from '../auth/passwords.js'
import type { Repositories } from '../repositories/index.js'
import type { AccountEmails } from './account-emails.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { conflict, notFound } from './errors.js'
import type { ExternalLoginConfig, ExternalLogins, StartRequest } from './external-logins.js'
import type { Reauthentication } from './reauthentication.js'

/** A linked identity as its owner sees it. */
export interface IdentityView {
  provider: string
  provider_name: string
  email: string | null
  created_at: Date
  last_used_at: Date | null
}

/**
 * A signed-in user's identities at OpenID Connect providers: linking one explicitly (the way to
 * link a provider whose email does not match, or that a sign-in refused to link), listing and
 * unlinking them. An account keeps at least one way in: a password, a passkey or an identity.
 */
export interface ExternalIdentities {
  /** Starts linking a provider to the caller's account: needs a recent proof of identity. */
  startLink(
    context: RequestContext,
    providerId: string,
    request: StartRequest,
    password: string | undefined,
  ): Promise<URL>
  /** Spends a link's one-time code: the provider's person becomes a way into the caller's account. */
  completeLink(
    context: RequestContext,
    providerId: string,
    code: string,
    codeVerifier: string,
  ): Promise<IdentityView>
  list(context: RequestContext): Promise<IdentityView[]>
  /** Unlinks the caller's identity of a provider, unless it is the account's last way to log in (409). */
  unlink(context: RequestContext, providerId: string): Promise<void>
}

export interface ExternalIdentitiesDependencies {
  config: ExternalLoginConfig
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  logins: ExternalLogins
  reauthentication: Pick<Reauthentication, 'require'>
  audit: AuditService
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
  clock: Clock
}

const NOT_LINKED = 'No identity of this provider is linked to your account.'

/** The provider's display name, or its id when it is no longer configured. */
export function providerNameOf(config: ExternalLoginConfig, providerId: string): string {
  return config.identityProviders.find((provider) => provider.id === providerId)?.name ?? providerId
}

export function createExternalIdentities(deps: ExternalIdentitiesDependencies): ExternalIdentities {
  const { config, repos, logins } = deps
  const viewOf = (identity: Omit<IdentityView, 'provider_name'>): IdentityView => ({
    ...identity,
    provider_name: providerNameOf(config, identity.provider),
  })
  return {
    async startLink(context, providerId, request, password) {
      const { id } = actorOf(context)
      logins.provider(providerId)
      // Linking gives the provider's person a way into this account: the caller proves it is the
      // owner (a stolen access token alone must not be enough), and the link is finished by the
      // client that started it (its PKCE verifier), never by whoever follows the provider's redirect.
      await deps.reauthentication.require(context, password)
      const mine = await repos.externalIdentities.listForUser(id)
      if (mine.some((identity) => identity.provider === providerId))
        throw conflict('An identity of this provider is linked to your account already: unlink it first.')
      return logins.start(context, providerId, request, { userId: id })
    },

    completeLink: (context, providerId, code, codeVerifier) =>
      completeLink(deps, context, { providerId, code, codeVerifier }).then(viewOf),

    async list(context) {
      return (await repos.externalIdentities.listForUser(actorOf(context).id)).map(viewOf)
    },

    unlink: (context, providerId) => unlink(deps, context, providerId),
  }
}

async function completeLink(
  deps: ExternalIdentitiesDependencies,
  context: RequestContext,
  asked: { providerId: string; code: string; codeVerifier: string },
): Promise<Omit<IdentityView, 'provider_name'>> {
  const { id } = actorOf(context)
  const flow = await deps.logins.spendCode(
    context,
    asked.providerId,
    asked.code,
    asked.codeVerifier,
    'link',
    id,
  )
  const now = dateOf(deps.clock)
  const email = flow.email === null ? null : normalizeEmail(flow.email)
  const linked = await deps.repos.externalIdentities.insert({
    userId: id,
    provider: asked.providerId,
    subject: flow.subject!,
    email,
    now,
  })
  if (linked === undefined) {
    await deps.audit.record(context, {
      event: 'external_login_failed',
      outcome: 'failure',
      userId: id,
      details: { provider: asked.providerId, reason: 'linked_elsewhere' },
    })
    throw conflict(
      'This account of the provider is linked to another account here, or yours has one of this provider already.',
    )
  }
  await deps.audit.record(context, {
    event: 'external_identity_linked',
    outcome: 'success',
    userId: id,
    details: { provider: asked.providerId },
  })
  const provider = providerNameOf(deps.config, asked.providerId)
  deps.notices.sendSecurityNotice(id, { kind: 'identity_linked', provider }, context.log)
  return { provider: asked.providerId, email, created_at: now, last_used_at: now }
}

async function unlink(deps: ExternalIdentitiesDependencies, context: RequestContext, providerId: string) {
  const { id } = actorOf(context)
  await deps.transaction(async (txRepos) => {
    if (!(await txRepos.externalIdentities.delete(id, providerId))) throw notFound(NOT_LINKED)
    // Decided after the delete has locked the user's row: two unlinks at once see each other.
    const passwordHash = await txRepos.users.findPasswordHash(id)
    const ways =
      // Stryker disable next-line ConditionalExpression: the user's row exists (delete() above locked it and found one of its identities, which a deletion of the user would have taken with it), so passwordHash is never undefined here.
      (passwordHash !== undefined && hasPassword(passwordHash) ? 1 : 0) +
      (await txRepos.externalIdentities.countForUser(id)) +
      (await txRepos.passkeys.countForUser(id))
    if (ways === 0)
      throw conflict(
        'This is the last way to log in to your account: set a password (password recovery) or add a passkey first.',
      )
    await deps.audit.record(
      context,
      {
        event: 'external_identity_unlinked',
        outcome: 'success',
        userId: id,
        details: { provider: providerId },
      },
      txRepos,
    )
  })
  const provider = providerNameOf(deps.config, providerId)
  deps.notices.sendSecurityNotice(id, { kind: 'identity_unlinked', provider }, context.log)
}
