import { variable } from '../declare.js'
import { boolean, emailAddress, integer, password, text } from '../readers.js'

export const PASSWORD_MIN_LENGTH = variable({
  name: 'PASSWORD_MIN_LENGTH',
  type: integer(8, 128),
  default: 8,
  fills: 'passwordMinLength',
  description: 'minimum password length in Unicode code points (the maximum is 1024)',
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

export const ACCOUNT_VARIABLES = [
  PASSWORD_MIN_LENGTH,
  REQUIRE_EMAIL_VERIFICATION,
  REQUIRE_IF_MATCH,
  FIRST_ADMIN_EMAIL,
  FIRST_ADMIN_PASSWORD,
  FIRST_ADMIN_NAME,
]
