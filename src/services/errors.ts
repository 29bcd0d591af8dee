/**
 * What a rule answers when it says no. Services throw these and know nothing of HTTP; the HTTP
 * layer turns each kind into one status and its headers, in one place (src/http/problems.ts).
 */
export interface FieldIssue {
  /** Where the bad value is: body, query, path or header. */
  in: string
  /** The field, as a dotted path ("" for the whole part). */
  field: string
  message: string
}

export type DomainErrorKind =
  /** A value breaks a rule (422), naming each bad field. */
  | 'invalid_input'
  /** The request cannot be acted on as sent: an unknown, used or expired emailed link (400). */
  | 'bad_request'
  /** No valid credentials (401). */
  | 'unauthenticated'
  /** Valid credentials, but not allowed (403). */
  | 'forbidden'
  | 'not_found'
  /** It clashes with what exists (a taken email), or with a request still running (409). */
  | 'conflict'
  /** The resource changed since the version the change names (412). */
  | 'stale_version'
  /** The change must name the version it changes (428). */
  | 'version_required'
  /** Too many attempts in a window (429). */
  | 'too_many_attempts'
  /** Not now: the service cannot serve it for the moment (503). */
  | 'unavailable'

export interface DomainErrorFacts {
  issues?: FieldIssue[]
  /** unauthenticated: credentials were presented and refused (not merely missing). */
  credentialsPresented?: boolean
  /** When trying again makes sense. */
  retryAfterSeconds?: number
  /** stale_version: the resource's current version tag. */
  currentVersion?: string
  /**
   * Members added to the problem's body (RFC 9457 extension members) for a client to act on, such
   * as the `mfa_token` of a login that owes a second factor. The route must declare them in its
   * response schema, or they are not sent.
   */
  extensions?: Record<string, string | number | readonly string[]>
}

export class DomainError extends Error {
  override name = 'DomainError'
  constructor(
    readonly kind: DomainErrorKind,
    readonly detail: string,
    readonly facts: DomainErrorFacts = {},
  ) {
    super(detail)
  }
}

export const invalidInput = (detail: string, issues: FieldIssue[]) =>
  new DomainError('invalid_input', detail, { issues })
export const badRequest = (detail: string) => new DomainError('bad_request', detail)
export const unauthenticated = (detail: string, credentialsPresented: boolean) =>
  new DomainError('unauthenticated', detail, { credentialsPresented })
export const forbidden = (detail: string) => new DomainError('forbidden', detail)
export const notFound = (detail: string) => new DomainError('not_found', detail)
export const conflict = (detail: string, retryAfterSeconds?: number) =>
  new DomainError('conflict', detail, retryAfterSeconds === undefined ? {} : { retryAfterSeconds })
export const staleVersion = (detail: string, currentVersion: string) =>
  new DomainError('stale_version', detail, { currentVersion })
export const versionRequired = (detail: string) => new DomainError('version_required', detail)
export const tooManyAttempts = (detail: string, retryAfterSeconds: number) =>
  new DomainError('too_many_attempts', detail, { retryAfterSeconds })
export const unavailable = (detail: string, retryAfterSeconds: number) =>
  new DomainError('unavailable', detail, { retryAfterSeconds })

/**
 * A login whose password was right and which still owes a second factor (403): `extensions` carry
 * `error: "mfa_required"`, the `mfa_token` to continue with and the factors it accepts.
 */
export const secondFactorRequired = (detail: string, extensions: DomainErrorFacts['extensions']) =>
  new DomainError('forbidden', detail, { extensions })

/** The account behind valid credentials no longer exists (deleted meanwhile). */
export const accountGone = () => unauthenticated('The account no longer exists', true)
