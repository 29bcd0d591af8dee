import type { DestinationStream } from 'pino'
import type PinoPretty from 'pino-pretty'
import type { Config } from '../config.js'

/** What a log line may carry that a developer wants to see at a glance: the links of a mail not sent. */
interface LoggedLine {
  mail?: { links?: string[] }
  [key: string]: unknown
}

/**
 * Where the server's log goes in development on a terminal: readable lines through pino-pretty (a
 * devDependency, present after `npm install`), with the links of a mail that was not sent (no
 * SMTP_URL) printed plainly on the line. Production, tests, a pipe or a file keep JSON lines
 * (undefined: the default stream), and so does a development server without pino-pretty installed.
 */
export async function developmentLogStream(
  config: Pick<Config, 'nodeEnv'>,
  output: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): Promise<DestinationStream | undefined> {
  if (config.nodeEnv !== 'development' || !output.isTTY) return undefined
  let pretty: typeof PinoPretty
  try {
    pretty = (await import('pino-pretty')).default
  } catch {
    return undefined
  }
  return pretty({
    destination: output,
    colorize: true,
    translateTime: 'HH:MM:ss',
    ignore: 'pid,hostname',
    messageFormat: (line: Record<string, unknown>, messageKey: string) => {
      const { mail } = line as LoggedLine
      const message = String((line as LoggedLine)[messageKey] ?? '')
      return mail?.links?.length ? `${message}: ${mail.links.join(' ')}` : message
    },
  })
}
