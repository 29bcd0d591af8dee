import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import type { Actor } from './context.js'
import { DomainError } from './errors.js'
import { hasSecondFactor } from './factor-rules.js'

/** An admin without a second factor, where REQUIRE_MFA_FOR_ADMINS is on, asked for anything but enrolment. */
export const enrolmentRequired = () =>
  new DomainError(
    'forbidden',
    'Admins must have a second factor here (REQUIRE_MFA_FOR_ADMINS): enrol one first, with POST /mfa/totp or ' +
      'POST /passkeys/registration-options; until then only enrolment, GET /mfa and logout are open to you.',
    { extensions: { error: 'mfa_enrolment_required' } },
  )

export interface EnrolmentPolicy {
  /**
   * Refuses an admin without a second factor, with REQUIRE_MFA_FOR_ADMINS, anything but what
   * enrolment needs (`enrolmentRoute`). A login that proved a second factor ("mfa" in its amr)
   * passes without a query: removing an admin's last factor is refused.
   */
  check(actor: Actor, enrolmentRoute: boolean): Promise<void>
}

export function createEnrolmentPolicy(deps: {
  config: Pick<Config, 'requireMfaForAdmins'>
  repos: Repositories
}): EnrolmentPolicy {
  return {
    async check(actor, enrolmentRoute) {
      if (!deps.config.requireMfaForAdmins || actor.role !== 'admin' || enrolmentRoute) return
      // A shortcut, not a rule: a session that proved a second factor belongs to an account that has
      // one (an admin's last factor cannot be removed, and a reset ends the sessions), so the query
      // below would answer the same; and every verified token carries `amr`.
      // Stryker disable next-line all: equivalent, as said above.
      if (actor.amr?.includes('mfa')) return
      if (!(await hasSecondFactor(deps.repos, actor.id))) throw enrolmentRequired()
    },
  }
}
