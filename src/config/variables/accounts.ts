import { isIP } from 'node:net'
import { variable } from '../declare.js'
import { identityProviders } from '../identity-providers.js'
import { boolean, emailAddress, integer, origins, password, text } from '../readers.js'
import { PUBLIC_URL } from './server.js'

export const PASSWORD_MIN_LENGTH = variable({
  name: 'PASSWORD_MIN_LENGTH',
  type: integer(8, 128),
  default: 8,
  fills: 'passwordMinLength',
  description: 'minimum password length in Unicode code points (the maximum is 1024)',
})

export const PASSWORD_HASHING_CONCURRENCY = variable({
  name: 'PASSWORD_HASHING_CONCURRENCY',
  type: integer(1, 1024),
  // Left to src/auth/passwords.ts, which knows the cores and the thread pool.
  default: () => undefined,
  documentedDefault: 'one less than the cores, and than `UV_THREADPOOL_SIZE` (4), at least 1',
  fills: 'passwordHashingConcurrency',
  description:
    'argon2id hashes computed at once; more favours logins per second during a login storm over the latency of every other request (docs/performance.md)',
})

export const REQUIRE_EMAIL_VERIFICATION = variable({
  name: 'REQUIRE_EMAIL_VERIFICATION',
  type: boolean,
  default: false,
  fills: 'requireEmailVerification',
  description: 'refuse login to unverified users',
})

export const REQUIRE_IF_MATCH = variable({
  name: 'REQUIRE_IF_MATCH',
  type: boolean,
  default: false,
  fills: 'requireIfMatch',
  description: 'PUT/PATCH/DELETE of a product must send `If-Match` (428 without it)',
})

export const FIRST_ADMIN_EMAIL = variable({
  name: 'FIRST_ADMIN_EMAIL',
  type: emailAddress,
  default: undefined,
  fills: 'firstAdminEmail',
  description: 'with `FIRST_ADMIN_PASSWORD`: an admin created at start, once',
})

export const FIRST_ADMIN_PASSWORD = variable({
  name: 'FIRST_ADMIN_PASSWORD',
  type: password,
  default: undefined,
  check: (adminPassword, { get, refuse }) => {
    if (get(FIRST_ADMIN_EMAIL) && !adminPassword) refuse('is required when FIRST_ADMIN_EMAIL is set')
  },
  fills: 'firstAdminPassword',
  description: "the first admin's password",
})

export const FIRST_ADMIN_NAME = variable({
  name: 'FIRST_ADMIN_NAME',
  type: text(),
  default: 'admin',
  // The rule of every user name (services/accounts.ts assertNamePolicy), said before anything starts.
  check: (name, { get, refuse }) => {
    if (get(FIRST_ADMIN_EMAIL) && name.normalize('NFKC').includes('@'))
      refuse(
        `"${name}" contains "@", which no user name may (it could be taken for an email address); choose a name without it`,
      )
  },
  fills: 'firstAdminName',
  description: "the first admin's user name (without `@`)",
})

export const REQUIRE_MFA_FOR_ADMINS = variable({
  name: 'REQUIRE_MFA_FOR_ADMINS',
  type: boolean,
  default: false,
  fills: 'requireMfaForAdmins',
  description:
    'an admin without a second factor (TOTP or a passkey) may only enrol one: every other request answers 403 `mfa_enrolment_required`',
})

/**
 * The relying party ID browsers accept for PUBLIC_URL's host: the host itself, except an IP address,
 * which WebAuthn never accepts as an RP ID (the development default, 127.0.0.1): `localhost` then.
 */
function defaultRpId(publicUrl: string): string {
  const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '')
  return isIP(host) ? 'localhost' : host
}

export const WEBAUTHN_RP_ID = variable({
  name: 'WEBAUTHN_RP_ID',
  type: text('a domain name, like `example.com`'),
  default: ({ get }) => defaultRpId(get(PUBLIC_URL)),
  documentedDefault: 'the host of `PUBLIC_URL` (`localhost` when it is an IP address)',
  check: (rpId, { refuse }) => {
    if (isIP(rpId) || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(rpId))
      refuse(`"${rpId}" is not a domain name (browsers accept no IP address or URL as a passkey's RP ID)`)
  },
  fills: { webauthnRpId: (rpId: string) => rpId.toLowerCase() },
  description:
    'the domain passkeys belong to: every page that uses them must be on it or a subdomain; changing it orphans the passkeys registered before',
  examples: [{ value: 'example.com' }],
})

export const WEBAUTHN_ORIGINS = variable({
  name: 'WEBAUTHN_ORIGINS',
  type: origins,
  default: ({ get }) => {
    const publicUrl = new URL(get(PUBLIC_URL))
    const rpId = get(WEBAUTHN_RP_ID).toLowerCase()
    if (publicUrl.hostname === rpId || publicUrl.hostname.endsWith(`.${rpId}`)) return [publicUrl.origin]
    // The development default: the server at 127.0.0.1, passkeys at http://localhost on its port.
    return [`${publicUrl.protocol}//localhost${publicUrl.port ? `:${publicUrl.port}` : ''}`]
  },
  documentedDefault: 'the origin of `PUBLIC_URL` (`http://localhost:PORT` when its host is an IP address)',
  check: (list, { get, refuse }) => {
    const rpId = get(WEBAUTHN_RP_ID).toLowerCase()
    for (const origin of list) {
      const host = new URL(origin).hostname
      if (host !== rpId && !host.endsWith(`.${rpId}`))
        refuse(`${origin} is not on ${rpId} (WEBAUTHN_RP_ID): browsers would refuse its passkeys`)
    }
    if (list.length === 0) refuse('name at least one origin the account pages are served from')
  },
  fills: 'webauthnOrigins',
  description: 'the browser origins whose passkey answers are accepted (the pages that call WebAuthn)',
  examples: [{ value: 'https://example.com,https://app.example.com' }],
})

export const OIDC_PROVIDERS = variable({
  name: 'OIDC_PROVIDERS',
  type: identityProviders,
  default: [],
  fills: 'identityProviders',
  description:
    'the OpenID Connect providers users may sign in with, as a JSON array; register `PUBLIC_URL/login/{id}/callback` as the redirect URI at each (README, "Sign in with other providers")',
  examples: [
    {
      value:
        '[{"id":"keycloak","name":"Company SSO","issuer":"https://sso.example.com/realms/main","client_id":"fastauth","client_secret":"…"}]',
    },
  ],
})

export const ACCOUNT_VARIABLES = [
  PASSWORD_MIN_LENGTH,
  PASSWORD_HASHING_CONCURRENCY,
  REQUIRE_EMAIL_VERIFICATION,
  REQUIRE_IF_MATCH,
  FIRST_ADMIN_EMAIL,
  FIRST_ADMIN_PASSWORD,
  FIRST_ADMIN_NAME,
  REQUIRE_MFA_FOR_ADMINS,
  WEBAUTHN_RP_ID,
  WEBAUTHN_ORIGINS,
  OIDC_PROVIDERS,
]
