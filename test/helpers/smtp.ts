import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { freePort } from './app.js'

/** A message as the test SMTP server received it. */
export interface ReceivedMail {
  from: string
  to: string[]
  subject: string
  text: string
  html: string
  receivedAt: number
}

/**
 * A real SMTP server (nodemailer's smtp-server) on a loopback port, for
 * tests of delivery: it collects every message it accepts. `stop()` and
 * `start()` take it down and bring it back on the same port (an outage).
 */
export class TestSmtpServer {
  readonly received: ReceivedMail[] = []
  /** Called after each message is accepted, with the count so far (a test's hook to cut the server mid-batch). */
  onMessage: ((count: number) => void) | undefined
  private server: SMTPServer | undefined
  private waiters: (() => void)[] = []

  private constructor (readonly port: number) {}

  static async start (): Promise<TestSmtpServer> {
    const smtp = new TestSmtpServer(await freePort())
    await smtp.start()
    return smtp
  }

  get url (): string {
    return `smtp://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      // No reverse DNS of the client: without a resolver it costs every connection a timeout.
      disableReverseLookup: true,
      // stop() cuts open connections (421) at once, as an outage would, instead of waiting 30 s for clients to leave.
      closeTimeout: 1,
      logger: false,
      onData: (stream, session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            // Refused once stopping: the client never gets a 250 for it, so it is not received.
            if (this.server !== server) {
              callback(new Error('server shutting down'))
              return
            }
            this.received.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              subject: mail.subject ?? '',
              text: mail.text ?? '',
              html: typeof mail.html === 'string' ? mail.html : '',
              receivedAt: Date.now(),
            })
            for (const wake of this.waiters.splice(0)) wake()
            callback()
            this.onMessage?.(this.received.length)
          })
          .catch(callback)
      },
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    server.on('error', () => {})
    this.server = server
  }

  /** Closes the listener and drops open connections. */
  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Messages to `address`, in the order received. */
  to (address: string): ReceivedMail[] {
    return this.received.filter((mail) => mail.to.includes(address))
  }

  /** Waits until `predicate` holds for what was received, or throws after `timeoutMs`. */
  async waitFor (predicate: (received: ReceivedMail[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this.received)) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`SMTP: condition not met after ${timeoutMs} ms (${this.received.length} messages received)`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits for the next message to `address` beyond the `already` seen, and returns it. */
  async nextTo (address: string, already = 0, timeoutMs = 10_000): Promise<ReceivedMail> {
    await this.waitFor(() => this.to(address).length > already, timeoutMs)
    return this.to(address)[already]!
  }

  /** Waits for the message to `address` whose subject contains `subject`, the one after the `already` seen such, and returns it. */
  async nextWithSubject (address: string, subject: string, already = 0, timeoutMs = 10_000): Promise<ReceivedMail> {
    const matching = () => this.to(address).filter((mail) => mail.subject.includes(subject))
    await this.waitFor(() => matching().length > already, timeoutMs)
    return matching()[already]!
  }
}

/** The token of a message's link (in its fragment or fragment query). */
export function linkToken (mail: Pick<ReceivedMail, 'text'>): string {
  const match = /[#?&]token=([A-Za-z0-9_%-]+)/.exec(mail.text)
  if (!match) throw new Error(`no link with a token in: ${mail.text}`)
  return decodeURIComponent(match[1]!)
}
