import { Type } from 'typebox'
import { OpaqueToken } from './auth.js'
import { Email, Password } from './common.js'

const EmailedToken = {
  ...OpaqueToken,
  description: 'The token from the link in the email (the part after `token=`).',
  examples: ['Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9'],
}

export const PasswordRecoveryRequest = Type.Object(
  { email: Email },
  { additionalProperties: false, examples: [{ email: 'hamed@example.com' }] },
)

export const PasswordReset = Type.Object(
  { token: EmailedToken, new_password: Password },
  {
    additionalProperties: false,
    examples: [
      { token: 'Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9', new_password: 'a new long passphrase' },
    ],
  },
)

export const EmailVerification = Type.Object(
  { token: EmailedToken },
  { additionalProperties: false, examples: [{ token: 'Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9' }] },
)

/** The answer of a request whose work (an email) goes on after it. */
export const Accepted = Type.Object(
  { detail: Type.String({ description: 'What happens next.' }) },
  { additionalProperties: false },
)
