import { Type, type Static } from 'typebox'
import { OPAQUE_TOKEN_PATTERN } from '../auth/opaque-tokens.js'
import { AuthenticationResponse } from './passkeys.js'
import { ValidationIssue } from './problem.js'

const SecondFactorName = Type.Union([
  Type.Literal('totp'),
  Type.Literal('passkey'),
  Type.Literal('recovery_code'),
])

export const TotpCode = Type.String({
  pattern: '^[0-9]{3} ?[0-9]{3}$',
  description: 'the 6 digits the authenticator app shows now (a space in the middle is allowed)',
  examples: ['492039'],
})

export const RecoveryCode = Type.String({
  minLength: 16,
  maxLength: 64,
  pattern: '^[0-9A-Za-z -]{16,64}$',
  description:
    'one of the recovery codes, as shown (xxxx-xxxx-xxxx-xxxx); case, dashes and spaces do not matter',
  examples: ['7kq2-m9xd-0hvw-c4tn'],
})

const MfaToken = Type.String({
  pattern: OPAQUE_TOKEN_PATTERN,
  description: 'the mfa_token of the 403 `mfa_required` answer of POST /login',
})

export const MfaLoginRequest = Type.Union(
  [
    Type.Object({ mfa_token: MfaToken, code: TotpCode }, { additionalProperties: false }),
    Type.Object({ mfa_token: MfaToken, recovery_code: RecoveryCode }, { additionalProperties: false }),
    Type.Object({ mfa_token: MfaToken, passkey: AuthenticationResponse }, { additionalProperties: false }),
  ],
  {
    description:
      'The mfa_token with one of: a TOTP `code`, a `recovery_code`, or a `passkey` assertion (the answer of ' +
      'navigator.credentials.get() to the options of POST /login/mfa/passkey-options).',
    examples: [
      { mfa_token: 'Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9', code: '492039' },
      { mfa_token: 'Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9', recovery_code: '7kq2-m9xd-0hvw-c4tn' },
    ],
  },
)
export type MfaLoginRequest = Static<typeof MfaLoginRequest>

export const MfaTokenRequest = Type.Object({ mfa_token: MfaToken }, { additionalProperties: false })

/**
 * POST /login's 403: a problem+json body, with the members a client needs to go on when the
 * password was right and a second factor is owed (absent from the other 403, an unverified email).
 */
export const LoginForbiddenProblem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Forbidden'] }),
    status: Type.Integer({ examples: [403] }),
    detail: Type.String(),
    errors: Type.Optional(Type.Array(ValidationIssue)),
    error: Type.Optional(
      Type.Literal('mfa_required', { description: 'present when the account needs a second factor' }),
    ),
    mfa_token: Type.Optional(
      Type.String({
        description: 'opaque, single-use, valid for expires_in seconds, only from this client (User-Agent)',
        examples: ['Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9'],
      }),
    ),
    factors: Type.Optional(
      Type.Array(SecondFactorName, {
        description: 'what POST /login/mfa accepts for this account',
        examples: [['totp', 'recovery_code']],
      }),
    ),
    expires_in: Type.Optional(
      Type.Integer({ description: 'seconds the mfa_token stays valid', examples: [300] }),
    ),
  },
  {
    description:
      'application/problem+json (RFC 9457), with `mfa_required` members when a second factor is owed.',
  },
)

export const TotpEnrolment = Type.Object(
  {
    secret: Type.String({
      description: 'base32 TOTP secret (SHA-1, 6 digits, 30 s), shown only in this answer',
      examples: ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'],
    }),
    otpauth_uri: Type.String({
      description: 'the same secret as an otpauth:// link for authenticator apps',
      examples: ['otpauth://totp/api.example.com:hamed%40example.com?issuer=api.example.com&secret=…'],
    }),
    qr_svg: Type.String({ description: 'the otpauth_uri as a QR code, an SVG document drawn by the server' }),
  },
  { additionalProperties: false },
)

export const TotpConfirmation = Type.Object(
  { code: TotpCode },
  { additionalProperties: false, examples: [{ code: '492039' }] },
)

export const RecoveryCodes = Type.Object(
  {
    recovery_codes: Type.Array(Type.String({ examples: ['7kq2-m9xd-0hvw-c4tn'] }), {
      minItems: 10,
      maxItems: 10,
      description: 'shown this once: each works for one login; keep them somewhere safe',
    }),
  },
  { additionalProperties: false },
)

export const Reauthentication = Type.Object(
  {
    password: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description:
          'your current password; it may be left out within 5 minutes of proving a second factor in this session ' +
          '(a login with one, or POST /mfa/reauthenticate)',
      }),
    ),
  },
  { additionalProperties: false, examples: [{ password: 'correct horse battery staple' }, {}] },
)

export const ReauthenticationRequest = Type.Union(
  [
    Type.Object({ code: TotpCode }, { additionalProperties: false }),
    Type.Object({ recovery_code: RecoveryCode }, { additionalProperties: false }),
    Type.Object({ passkey: AuthenticationResponse }, { additionalProperties: false }),
  ],
  {
    description:
      'One second factor: a TOTP `code`, a `recovery_code`, or a `passkey` assertion answering the options of ' +
      'POST /mfa/reauthenticate/passkey-options.',
    examples: [{ code: '492039' }],
  },
)

export const Reauthenticated = Type.Object(
  {
    expires_in: Type.Integer({
      description: 'seconds during which sensitive changes of this session need no password',
      examples: [300],
    }),
  },
  { additionalProperties: false },
)

/**
 * The 403 of a sensitive change: asked without the password nor a recent second factor, or by an
 * admin who must enrol a second factor first. Both reasons are listed: the serializer writes a
 * lone constant whatever the value, so a schema naming one would give the other reason its name.
 */
export const ReauthenticationRequiredProblem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Forbidden'] }),
    status: Type.Integer({ examples: [403] }),
    detail: Type.String(),
    error: Type.Optional(
      Type.Union([
        Type.Literal('reauthentication_required', {
          description: 'send the current `password`, or re-authenticate with POST /mfa/reauthenticate first',
        }),
        Type.Literal('mfa_enrolment_required', {
          description: 'an admin without a second factor (REQUIRE_MFA_FOR_ADMINS): enrol one first',
        }),
      ]),
    ),
  },
  { description: 'application/problem+json (RFC 9457); `error` says what to do.' },
)

/** The response entry of a change that may need re-authentication. */
export const reauthenticationResponse = {
  403: {
    description:
      'Re-authentication needed (`error: "reauthentication_required"`): send `password`, or prove a second factor ' +
      'with POST /mfa/reauthenticate and repeat the request within 5 minutes.',
    content: { 'application/problem+json': { schema: ReauthenticationRequiredProblem } },
  },
}

export const SecondFactorStatus = Type.Object(
  {
    factors: Type.Array(SecondFactorName, { description: 'what a login of this account will ask for' }),
    totp: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('active')], {
      description: 'pending: enrolment started, not confirmed yet',
    }),
    passkeys: Type.Integer({ minimum: 0, description: 'how many passkeys the account has', examples: [1] }),
    recovery_codes_left: Type.Integer({ minimum: 0, examples: [10] }),
    enrolment_required: Type.Boolean({
      description:
        'an admin without a second factor where REQUIRE_MFA_FOR_ADMINS is on: enrol one before anything else',
    }),
  },
  { additionalProperties: false },
)
