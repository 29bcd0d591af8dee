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

/** How an error status is declared on a route: a Problem body, as application/problem+json. */
const problemResponse = (status: number) => ({
  description: `Problem details (${status})`,
  content: { 'application/problem+json': { schema: ref } },
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
