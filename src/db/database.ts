import type { ColumnType, Generated, Insertable, RawBuilder, Selectable, Updateable } from 'kysely'

/** Timestamps are UTC instants: written and read as `Date` on every engine (see sqlite.ts and mysql.ts). */
type Timestamp = ColumnType<Date, Date, Date>

export interface UsersTable {
  id: Generated<number>
  name: string
  /** Lower-cased `name`: the column that makes names unique regardless of case, on every engine. */
  name_key: string
  /** Stored normalised (trimmed, lower-cased), so uniqueness is the same on every engine. */
  email: string
  password_hash: string
  role: 'user' | 'admin'
  is_active: boolean
  email_verified: boolean
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ProductsTable {
  id: Generated<number>
  product_id: string
  name: string
  description: string
  price: number
  owner_id: number | null
  /** Incremented by every change; the product's ETag. */
  version: ColumnType<number, number, number | RawBuilder<number>>
  /** Lower-cased NFKC "product_id\nname\ndescription", matched by the `q` filter. */
  search_text: string
  created_at: Timestamp
  updated_at: Timestamp
}

export interface SessionsTable {
  id: string
  /** null once the user is deleted (the row stays while its revocation matters). */
  user_id: number | null
  created_at: Timestamp
  last_used_at: Timestamp
  expires_at: Timestamp
  user_agent: string | null
  ip: string | null
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>
  revoked_reason: string | null
  /** How the login was authenticated: RFC 8176 method names separated by spaces ("pwd otp mfa"). */
  amr: ColumnType<string, string | undefined, string>
  /** When the user last proved a second factor in this session (its login, or a re-authentication). */
  factor_verified_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export interface RefreshTokensTable {
  token_hash: string
  session_id: string
  created_at: Timestamp
  expires_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export interface IdempotencyKeysTable {
  user_id: number
  idempotency_key: string
  request_hash: string
  /** null while the first request with this key is still being processed. */
  response_status: ColumnType<number | null, number | null | undefined, number | null>
  response_body: ColumnType<string | null, string | null | undefined, string | null>
  created_at: Timestamp
  expires_at: Timestamp
}

export type AccountTokenPurpose = 'password_reset' | 'email_verification'

export interface AccountTokensTable {
  token_hash: string
  user_id: number
  purpose: AccountTokenPurpose
  /** The address the token was mailed to. */
  email: string
  created_at: Timestamp
  expires_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export type AuditOutcome = 'success' | 'failure' | 'blocked'

export interface AuditEventsTable {
  id: Generated<number>
  created_at: Timestamp
  event: string
  outcome: AuditOutcome
  /** The subject: whose account the event concerns. No foreign key: kept after a deletion. */
  user_id: number | null
  /** Who did it, when the request was authenticated. */
  actor_id: number | null
  ip: string | null
  user_agent: string | null
  /** A small JSON object (reason codes, ids), or null; never a secret. */
  details: string | null
}

/** The one row /readyz rewrites to prove that the database can store a change (id is always 1). */
export interface ReadinessProbeTable {
  id: number
  checked_at: Timestamp
}

/**
 * A user's TOTP factor: pending while confirmed_at is null, active once confirmed. A pending one
 * has no last_used_step, an active one always has one (a check constraint says so).
 */
export interface TotpFactorsTable {
  user_id: number
  /** The base32 secret, encrypted (src/auth/data-encryption.ts, context `totp:user:<id>`). */
  secret_encrypted: string
  /** When the enrolment (the current secret) started. */
  created_at: Timestamp
  confirmed_at: ColumnType<Date | null, Date | null | undefined, Date | null>
  /** The last time step whose code was accepted (the confirming code's, then each login's). */
  last_used_step: ColumnType<number | null, number | null | undefined, number | null>
}

/** One single-use recovery code of a user, stored only as a hash (src/auth/recovery-codes.ts). */
export interface RecoveryCodesTable {
  user_id: number
  code_hash: string
  created_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

/** A login past its password that still owes a second factor: single-use, short-lived. */
export interface MfaTokensTable {
  token_hash: string
  user_id: number
  /** The application's digest of what binds the token to the client that logged in. */
  client_hash: string
  /** The application's digest of the password as it was: it changes with the password. */
  credential_stamp: string
  created_at: Timestamp
  expires_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

/** A passkey (WebAuthn credential) of a user. */
export interface PasskeysTable {
  id: Generated<number>
  user_id: number
  /** SHA-256 of credential_id (hex): the unique key a login finds the credential by. */
  credential_hash: string
  /** The authenticator's credential id, base64url. */
  credential_id: string
  /** The account's opaque WebAuthn user id (base64url), the same for each of its passkeys. */
  user_handle: string
  /** The COSE public key, base64url. */
  public_key: string
  sign_count: number
  /** Comma-separated transports the browser reported (may be empty). */
  transports: string
  name: string
  device_type: 'singleDevice' | 'multiDevice'
  backed_up: boolean
  aaguid: string
  created_at: Timestamp
  last_used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export type WebAuthnChallengePurpose = 'registration' | 'passkey_login' | 'second_factor'

/** A WebAuthn challenge the server issued, stored only as a hash; spent by deleting it. */
export interface WebAuthnChallengesTable {
  challenge_hash: string
  purpose: WebAuthnChallengePurpose
  /** The account it was issued for; null for a password-less login's (no account known yet). */
  user_id: number | null
  /** A registration's: the WebAuthn user id its options carried. */
  user_handle: string | null
  created_at: Timestamp
  expires_at: Timestamp
}

/** A key access tokens are signed with (asymmetric algorithms only). */
export interface SigningKeysTable {
  /** RFC 7638 thumbprint of the public key (SHA-256, base64url): the tokens' `kid`. */
  kid: string
  /** 1, 2, 3…: the order keys were made in; unique. */
  generation: number
  algorithm: string
  /** The public key as a JWK, JSON. */
  public_jwk: string
  /** The PKCS#8 PEM, encrypted at rest; null once the key is retired. */
  private_key: string | null
  /** Published (in the JWKS, verifying) from then on. */
  created_at: Timestamp
  /** Signs from then on, until a later generation activates. */
  activates_at: Timestamp
  /** Stops verifying (leaves the JWKS) then; null while no later key replaces it. */
  retires_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

/** An account of an OpenID Connect provider linked to one of ours. */
export interface ExternalIdentitiesTable {
  id: Generated<number>
  user_id: number
  /** The provider's id in OIDC_PROVIDERS. */
  provider: string
  /** The provider's `sub` claim: who the person is there, for good. */
  subject: string
  /** The email the provider gave at the last sign-in (null when it gave none). */
  email: string | null
  created_at: Timestamp
  last_used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export type ExternalLoginPurpose = 'sign_in' | 'link'

/** A sign-in (or link) with a provider in flight, then its one-time code (migration 0011). */
export interface ExternalLoginsTable {
  /** SHA-256 (hex) of the `state` sent to the provider. */
  state_hash: string
  provider: string
  purpose: ExternalLoginPurpose
  /** The account a link was asked for; null for a sign-in. */
  user_id: number | null
  /** The OIDC nonce and our PKCE verifier towards the provider; erased by the callback. */
  nonce: string | null
  code_verifier: string | null
  /** The client's PKCE challenge (S256): its verifier must come with the one-time code. */
  client_challenge: string
  return_to: string
  /** SHA-256 (hex) of the one-time code the callback handed the client; null before. */
  code_hash: string | null
  /** What the provider vouched for, stored by the callback. */
  subject: string | null
  email: string | null
  email_verified: boolean | null
  profile_name: string | null
  created_at: Timestamp
  expires_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export interface Database {
  users: UsersTable
  products: ProductsTable
  sessions: SessionsTable
  refresh_tokens: RefreshTokensTable
  account_tokens: AccountTokensTable
  idempotency_keys: IdempotencyKeysTable
  audit_events: AuditEventsTable
  readiness_probe: ReadinessProbeTable
  totp_factors: TotpFactorsTable
  recovery_codes: RecoveryCodesTable
  mfa_tokens: MfaTokensTable
  passkeys: PasskeysTable
  webauthn_challenges: WebAuthnChallengesTable
  signing_keys: SigningKeysTable
  external_identities: ExternalIdentitiesTable
  external_logins: ExternalLoginsTable
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type UserRowUpdate = Updateable<UsersTable>
export type ProductRow = Selectable<ProductsTable>
export type NewProductRow = Insertable<ProductsTable>
export type ProductRowUpdate = Updateable<ProductsTable>
export type SessionRow = Selectable<SessionsTable>
export type NewSessionRow = Insertable<SessionsTable>
export type NewAccountTokenRow = Insertable<AccountTokensTable>
export type AuditEventRow = Selectable<AuditEventsTable>
export type NewAuditEventRow = Insertable<AuditEventsTable>
export type TotpFactorRow = Selectable<TotpFactorsTable>
export type MfaTokenRow = Selectable<MfaTokensTable>
export type NewMfaTokenRow = Insertable<MfaTokensTable>
export type PasskeyRow = Selectable<PasskeysTable>
export type NewPasskeyRow = Insertable<PasskeysTable>
export type SigningKeyRow = Selectable<SigningKeysTable>
export type ExternalIdentityRow = Selectable<ExternalIdentitiesTable>
export type ExternalLoginRow = Selectable<ExternalLoginsTable>
export type NewExternalLoginRow = Insertable<ExternalLoginsTable>
