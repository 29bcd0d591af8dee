import { STATUS_CODES } from 'node:http'
import { Type } from 'typebox'

export const ValidationIssue = Type.Object({
  in: Type.String({
    description: 'Where the bad value is: body, query, path or header.',
    examples: ['body'],
  }),
  field: Type.String({
    description: 'The field, as a dotted path ("" for the whole part).',
    examples: ['email'],
  }),
  message: Type.String({ examples: ['must match format "email"'] }),
})

/** RFC 9457 problem details: the body of every error response. */
export const Problem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Unprocessable Content'] }),
    status: Type.Integer({ examples: [422] }),
    detail: Type.String({ examples: ['The request is not valid: see errors.'] }),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(ValidationIssue)),
    error: Type.Optional(
      Type.String({
        description:
          'A reason a client can act on, where there is one: `mfa_required`, `reauthentication_required`, ' +
          '`mfa_enrolment_required`.',
        examples: ['reauthentication_required'],
      }),
    ),
  },
  { $id: 'Problem', description: 'An error, as application/problem+json (RFC 9457).' },
)

const ref = Type.Ref('Problem')

/** RFC 9110's names where Node's table still has the older ones. */
const TITLES: Record<number, string> = { 413: 'Content Too Large', 422: 'Unprocessable Content' }

/** The `title` of a problem of this status. */
export const problemTitle = (status: number) => TITLES[status] ?? STATUS_CODES[status] ?? 'Error'

/** What each error status means on our routes, and a realistic body of it, for the docs. */
const ERROR_EXAMPLES: Record<number, { meaning: string; detail: string; error?: string }> = {
  400: {
    meaning: 'Bad request',
    detail: 'The code is unknown, used, expired, or was not issued to this client.',
  },
  401: { meaning: 'Not authenticated', detail: 'The access token has expired' },
  403: { meaning: 'Not allowed', detail: 'Only the owner of this product or an admin may change it.' },
  404: { meaning: 'Not found', detail: 'There is no product 42.' },
  409: { meaning: 'Conflict', detail: 'A user with this email already exists.' },
  412: {
    meaning: 'Changed since read',
    detail: 'The product has changed since you read it: GET it again and retry with its new ETag.',
  },
  413: { meaning: 'Body too large', detail: 'Request body is too large' },
  415: {
    meaning: 'Wrong media type',
    detail: 'This route takes application/json: send the body with that Content-Type.',
  },
  422: { meaning: 'Invalid input', detail: 'The request is not valid: see errors.' },
  428: {
    meaning: 'If-Match required',
    detail: 'Send If-Match with the ETag from GET /product/{id}: changes must name the version they change.',
  },
  429: {
    meaning: 'Too many requests',
    detail: 'Too many requests from this address; try again in 60 seconds.',
  },
  503: { meaning: 'Unavailable', detail: 'The database does not answer; try again shortly.' },
}

function exampleOf(status: number) {
  const known = ERROR_EXAMPLES[status]
  return {
    type: 'about:blank',
    title: problemTitle(status),
    status,
    detail: known?.detail ?? problemTitle(status),
    ...(status === 422
      ? { errors: [{ in: 'body', field: 'email', message: 'must match format "email"' }] }
      : {}),
  }
}

/** How an error status is declared on a route: a Problem body, as application/problem+json, with its own example. */
const problemResponse = (status: number) => ({
  description: `${ERROR_EXAMPLES[status]?.meaning ?? problemTitle(status)} (problem details)`,
  content: { 'application/problem+json': { schema: ref, example: exampleOf(status) } },
})

/** Response entries for the error statuses a route can return, all with the Problem body. */
export function problemResponses<S extends number>(
  ...statuses: S[]
): Record<S, ReturnType<typeof problemResponse>> {
  return Object.fromEntries(statuses.map((status) => [status, problemResponse(status)])) as Record<
    S,
    ReturnType<typeof problemResponse>
  >
}
