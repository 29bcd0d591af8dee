import { Type, type Static } from 'typebox'
import { Timestamp } from './common.js'

/**
 * Passkeys (WebAuthn) on the wire: the options the server hands to navigator.credentials.create()
 * and .get(), and the JSON the browser answers with (PublicKeyCredential.toJSON(), or what
 * @simplewebauthn/browser's startRegistration/startAuthentication return). Binary values are
 * base64url text, as WebAuthn's JSON serialisation writes them.
 */

/**
 * A base64url value of a WebAuthn answer, bounded so that a huge body is refused before any
 * parsing: generous for what authenticators send (client data is a few hundred bytes, a 'none'
 * attestation about 300, a packed one with its certificates a few kilobytes), and small enough that
 * a whole answer fits in the default body limit (64 KiB).
 */
const base64url = (description: string, maxLength = 4_096) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]*$', minLength: 1, maxLength, description })

const Transport = Type.String({
  maxLength: 32,
  description: 'how the browser reaches the authenticator: usb, nfc, ble, internal, hybrid…',
  examples: ['internal'],
})

const Transports = Type.Array(Transport, { maxItems: 10 })

const ClientExtensionResults = Type.Object(
  {},
  {
    additionalProperties: true,
    description: 'the client extension outputs (e.g. credProps); kept as sent, not interpreted',
  },
)

const AuthenticatorAttachment = Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')])

/** What navigator.credentials.create() answers, as JSON. */
export const RegistrationResponse = Type.Object(
  {
    id: base64url('the credential id', 1_400),
    rawId: base64url('the credential id again', 1_400),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: base64url('the client data the authenticator signed over'),
        attestationObject: base64url('the attestation: authenticator data and the new public key', 24_576),
        authenticatorData: Type.Optional(base64url('the authenticator data alone')),
        transports: Type.Optional(Transports),
        publicKeyAlgorithm: Type.Optional(Type.Integer()),
        publicKey: Type.Optional(base64url('the public key as SubjectPublicKeyInfo', 2_048)),
      },
      { additionalProperties: false },
    ),
    authenticatorAttachment: Type.Optional(AuthenticatorAttachment),
    clientExtensionResults: ClientExtensionResults,
  },
  {
    additionalProperties: false,
    description: 'PublicKeyCredential.toJSON() of navigator.credentials.create()',
  },
)

/** What navigator.credentials.get() answers, as JSON. */
export const AuthenticationResponse = Type.Object(
  {
    id: base64url('the credential id', 1_400),
    rawId: base64url('the credential id again', 1_400),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: base64url('the client data the authenticator signed over'),
        authenticatorData: base64url('the authenticator data: RP ID hash, flags, signature counter'),
        signature: base64url('the signature over the authenticator data and the client data', 2_048),
        userHandle: Type.Optional(
          base64url('the account’s WebAuthn user id (a discoverable passkey sends it)', 256),
        ),
      },
      { additionalProperties: false },
    ),
    authenticatorAttachment: Type.Optional(AuthenticatorAttachment),
    clientExtensionResults: ClientExtensionResults,
  },
  { additionalProperties: false, description: 'PublicKeyCredential.toJSON() of navigator.credentials.get()' },
)

const CredentialDescriptor = Type.Object({
  id: Type.String(),
  type: Type.Literal('public-key'),
  transports: Type.Optional(Transports),
})

/**
 * Options for navigator.credentials.create() (PublicKeyCredential.parseCreationOptionsFromJSON, or
 * @simplewebauthn/browser's startRegistration). Members WebAuthn may add later pass through.
 */
export const RegistrationOptions = Type.Object(
  {
    rp: Type.Object({ id: Type.Optional(Type.String()), name: Type.String() }),
    user: Type.Object({ id: Type.String(), name: Type.String(), displayName: Type.String() }),
    challenge: Type.String({ description: 'single-use, valid for `timeout` milliseconds' }),
    pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.Literal('public-key') })),
    timeout: Type.Optional(Type.Integer()),
    excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
    authenticatorSelection: Type.Optional(
      Type.Object(
        {
          authenticatorAttachment: Type.Optional(AuthenticatorAttachment),
          residentKey: Type.Optional(Type.String()),
          requireResidentKey: Type.Optional(Type.Boolean()),
          userVerification: Type.Optional(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
    hints: Type.Optional(Type.Array(Type.String())),
    attestation: Type.Optional(Type.String()),
    extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: true, description: 'PublicKeyCredentialCreationOptionsJSON' },
)

/** Options for navigator.credentials.get() (parseRequestOptionsFromJSON, or startAuthentication). */
export const AuthenticationOptions = Type.Object(
  {
    challenge: Type.String({ description: 'single-use, valid for `timeout` milliseconds' }),
    timeout: Type.Optional(Type.Integer()),
    rpId: Type.Optional(Type.String()),
    allowCredentials: Type.Optional(
      Type.Array(CredentialDescriptor, {
        description: 'the account’s passkeys (a second factor); absent for a password-less login',
      }),
    ),
    userVerification: Type.Optional(Type.String()),
    hints: Type.Optional(Type.Array(Type.String())),
    extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: true, description: 'PublicKeyCredentialRequestOptionsJSON' },
)

const PasskeyName = Type.String({
  minLength: 1,
  maxLength: 100,
  // One line of storable text (no control character, NUL included, nor a lone surrogate) with
  // something in it besides spaces.
  pattern: '^[^\\p{Cc}\\uD800-\\uDFFF]*[^\\s\\p{Cc}\\uD800-\\uDFFF][^\\p{Cc}\\uD800-\\uDFFF]*$',
  description: 'a name for the owner to tell their passkeys apart',
  examples: ['iPhone'],
})

export const PasskeyPublic = Type.Object(
  {
    id: Type.Integer({ examples: [3] }),
    name: PasskeyName,
    created_at: Timestamp,
    last_used_at: Type.Union([Timestamp, Type.Null()]),
    device_type: Type.Union([Type.Literal('singleDevice'), Type.Literal('multiDevice')], {
      description:
        'multiDevice: a synced passkey (a password manager, iCloud Keychain…); singleDevice: one key',
    }),
    backed_up: Type.Boolean({ description: 'the passkey is backed up (synced) now' }),
  },
  { additionalProperties: false },
)

export const PasskeyList = Type.Object({ items: Type.Array(PasskeyPublic) }, { additionalProperties: false })

export const PasskeyRegistrationRequest = Type.Object(
  { response: RegistrationResponse, name: Type.Optional(PasskeyName) },
  { additionalProperties: false },
)
export type PasskeyRegistrationRequest = Static<typeof PasskeyRegistrationRequest>

export const PasskeyRegistered = Type.Object(
  {
    passkey: PasskeyPublic,
    recovery_codes: Type.Optional(
      Type.Array(Type.String({ examples: ['7kq2-m9xd-0hvw-c4tn'] }), {
        minItems: 10,
        maxItems: 10,
        description:
          'only when this passkey is the account’s first second factor: shown this once; each works for one login',
      }),
    ),
  },
  { additionalProperties: false },
)

export const PasskeyRename = Type.Object({ name: PasskeyName }, { additionalProperties: false })

export const PasskeyIdParams = Type.Object(
  { id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) },
  { additionalProperties: false },
)

export const PasskeyLoginRequest = Type.Object(
  { response: AuthenticationResponse },
  { additionalProperties: false },
)
