import { problemTitle } from '../schemas/problem.js'
import type { FastifyError } from 'fastify'
import type { DomainError, DomainErrorKind, FieldIssue } from '../services/errors.js'

/** A bad field, as the 422's `errors` list names it. */
export type ValidationIssue = FieldIssue

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  errors?: ValidationIssue[]
  /** RFC 9457 extension members (a DomainError's `extensions`). */
  [extension: string]: unknown
}

/**
 * An answer of the HTTP layer itself (405, 503 while shutting down, …): the error handler turns it
 * into application/problem+json. Rules throw DomainError instead (src/services/errors.ts).
 */
export class HttpProblem extends Error {
  override name = 'HttpProblem'
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly options: {
      headers?: Record<string, string>
      errors?: ValidationIssue[]
      type?: string
      extensions?: Record<string, unknown>
    } = {},
  ) {
    super(detail)
  }

  toBody(): ProblemBody {
    // The standard members come last: an extension never overrides them.
    return {
      ...this.options.extensions,
      ...problemBody(this.status, this.detail, this.options.errors, this.options.type),
    }
  }
}

/** RFC 9110 names where Node's table still has the older ones. */
export function problemBody(
  status: number,
  detail: string,
  errors?: ValidationIssue[],
  type = 'about:blank',
): ProblemBody {
  return {
    type,
    title: problemTitle(status),
    status,
    detail,
    ...(errors ? { errors } : {}),
  }
}

const BEARER_REALM = 'Bearer realm="api"'

/** The one mapping from what a rule said to the answer a client gets. */
const STATUS_OF: Record<DomainErrorKind, number> = {
  invalid_input: 422,
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  stale_version: 412,
  version_required: 428,
  too_many_attempts: 429,
  unavailable: 503,
}

/** A domain error as the problem the client receives: its status, headers and body. */
export function problemOf(error: DomainError): HttpProblem {
  const { kind, detail, facts } = error
  const headers: Record<string, string> = {}
  if (kind === 'unauthenticated')
    // RFC 6750: a token that was sent and refused is "invalid_token"; none sent is a bare challenge.
    headers['www-authenticate'] = facts.credentialsPresented
      ? `${BEARER_REALM}, error="invalid_token", error_description="${detail.replace(/"/g, "'")}"`
      : BEARER_REALM
  if (facts.retryAfterSeconds !== undefined) headers['retry-after'] = String(facts.retryAfterSeconds)
  if (facts.currentVersion !== undefined) headers.etag = facts.currentVersion
  return new HttpProblem(STATUS_OF[kind], detail, {
    headers,
    errors: facts.issues,
    ...(facts.extensions ? { extensions: facts.extensions } : {}),
  })
}

const PARTS: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
}

/** What a field name looks like here (snake_case, at most 64 characters). */
const FIELD_NAME = /^[A-Za-z0-9_.[\]-]{1,64}$/

/** Turns Ajv's errors (as Fastify reports them) into one issue per bad field. */
export function validationIssues(error: FastifyError): ValidationIssue[] {
  const part = PARTS[error.validationContext ?? 'body'] ?? 'body'
  return (error.validation ?? []).map((issue) => {
    const params = issue.params as Record<string, unknown>
    let field = issue.instancePath.replace(/^\//, '').replace(/\//g, '.')
    let message = issue.message ?? 'is not valid'
    if (issue.keyword === 'additionalProperties') {
      const name = String(params.additionalProperty)
      // A name is repeated only when it looks like one: the "name" of a JSON body sent as a form
      // (curl -d without a Content-Type) is the whole body, password included.
      if (FIELD_NAME.test(name)) {
        field = [field, name].filter(Boolean).join('.')
        message = 'is not an allowed field'
      } else
        message = /^\s*[{[]/.test(name)
          ? 'is JSON sent as a form: send it with Content-Type: application/json'
          : 'has a field that is not allowed (its name is not repeated: it is no field name)'
    } else if (issue.keyword === 'required') {
      field = [field, String(params.missingProperty)].filter(Boolean).join('.')
      message = 'is required'
    } else if (issue.keyword === 'minProperties') {
      message = 'must contain at least one field'
    } else if (issue.keyword === 'pattern') {
      // The regular expression means nothing to a client; the schema's description says the rule.
      const description = (issue as { parentSchema?: { description?: string } }).parentSchema?.description
      message = description ? `is not valid: ${description}` : 'contains characters that are not allowed here'
    } else if (issue.keyword === 'anyOf') {
      // Ajv's "must match a schema in anyOf" names a keyword; the issues before it say what is wrong.
      message = 'does not match any of the accepted shapes (see the API documentation)'
    } else if (issue.keyword === 'type' && params.type === 'integer' && field !== '') {
      // "must be integer" does not say why 12.99 is wrong: the field's description does.
      const description = (issue as { parentSchema?: { description?: string } }).parentSchema?.description
      message = description ? `must be a whole number (${description})` : 'must be a whole number'
    } else if (field === '' && issue.keyword === 'type' && part === 'body') {
      message = 'a JSON object is required as the request body'
    }
    return { in: part, field, message }
  })
}
