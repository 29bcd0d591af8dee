import { STATUS_CODES } from 'node:http'
import type { FastifyError } from 'fastify'

export interface ValidationIssue {
  in: string
  field: string
  message: string
}

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  errors?: ValidationIssue[]
}

/** An error meant for the client: the error handler turns it into application/problem+json. */
export class HttpProblem extends Error {
  override name = 'HttpProblem'
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly options: { headers?: Record<string, string>; errors?: ValidationIssue[]; type?: string } = {},
  ) {
    super(detail)
  }

  toBody(): ProblemBody {
    return problemBody(this.status, this.detail, this.options.errors, this.options.type)
  }
}

/** RFC 9110 names where Node's table still has the older ones. */
const TITLES: Record<number, string> = { 413: 'Content Too Large', 422: 'Unprocessable Content' }

export function problemBody(
  status: number,
  detail: string,
  errors?: ValidationIssue[],
  type = 'about:blank',
): ProblemBody {
  return {
    type,
    title: TITLES[status] ?? STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    ...(errors ? { errors } : {}),
  }
}

const BEARER_REALM = 'Bearer realm="api"'

export const unauthorized = (detail: string, tokenPresented: boolean) =>
  new HttpProblem(401, detail, {
    headers: {
      'www-authenticate': tokenPresented
        ? `${BEARER_REALM}, error="invalid_token", error_description="${detail.replace(/"/g, "'")}"`
        : BEARER_REALM,
    },
  })
export const forbidden = (detail: string) => new HttpProblem(403, detail)
export const notFound = (detail: string) => new HttpProblem(404, detail)
export const conflict = (detail: string) => new HttpProblem(409, detail)
export const unprocessable = (detail: string, errors: ValidationIssue[]) =>
  new HttpProblem(422, detail, { errors })

const PARTS: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
}

/** Turns Ajv's errors (as Fastify reports them) into one issue per bad field. */
export function validationIssues(error: FastifyError): ValidationIssue[] {
  const part = PARTS[error.validationContext ?? 'body'] ?? 'body'
  return (error.validation ?? []).map((issue) => {
    const params = issue.params as Record<string, unknown>
    let field = issue.instancePath.replace(/^\//, '').replace(/\//g, '.')
    let message = issue.message ?? 'is not valid'
    if (issue.keyword === 'additionalProperties') {
      field = [field, String(params.additionalProperty)].filter(Boolean).join('.')
      message = 'is not an allowed field'
    } else if (issue.keyword === 'required') {
      field = [field, String(params.missingProperty)].filter(Boolean).join('.')
      message = 'is required'
    } else if (issue.keyword === 'minProperties') {
      message = 'must contain at least one field'
    } else if (issue.keyword === 'pattern') {
      // The regular expression means nothing to a client; the schema's description says the rule.
      const description = (issue as { parentSchema?: { description?: string } }).parentSchema?.description
      message = description ? `is not valid: ${description}` : 'contains characters that are not allowed here'
    } else if (field === '' && issue.keyword === 'type' && part === 'body') {
      message = 'a JSON object is required as the request body'
    }
    return { in: part, field, message }
  })
}
