import type { Role } from '../auth/tokens.js'

/** Who is calling, as the verified access token says. */
export interface Actor {
  id: number
  role: Role
  sessionId: string
  /** How the session's login was authenticated (the token's `amr`); absent where no token says. */
  amr?: readonly string[]
}

/** The few logger methods the rules use (pino's, without its types). */
export interface ServiceLogger {
  debug(object: object, message?: string): void
  info(object: object, message?: string): void
  warn(object: object, message?: string): void
  error(object: object, message?: string): void
}

/**
 * What a rule may know of the request it serves, without HTTP: who asks (when authenticated), from
 * where, and the request's logger (its lines carry the request id).
 */
export interface RequestContext {
  actor?: Actor
  ip: string
  userAgent: string | undefined
  log: ServiceLogger
}

/** The caller of a rule that only authenticated requests reach (the HTTP layer authenticated them). */
export function actorOf(context: RequestContext): Actor {
  if (!context.actor) throw new Error('this rule needs an authenticated caller')
  return context.actor
}
