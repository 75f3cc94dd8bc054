import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

/** One request a receiver got, with what the standardwebhooks package made of its signature. */
export interface ReceivedMessage {
  id: string
  timestamp: string
  signature: string
  body: string
  headers: IncomingHttpHeaders
  /** standardwebhooks' Webhook.verify under the receiver's secret(s) succeeded. */
  verified: boolean
  /** The status the receiver answered. */
  status: number
}

/**
 * A webhook receiver on loopback, as a platform service would run one: it
 * verifies each request with the `standardwebhooks` package (Standard
 * Webhooks 1.0) and answers what `answer` says (200 by default).
 */
export class WebhookReceiver {
  readonly received: ReceivedMessage[] = []
  secrets: string[] = []
  answer: (message: Omit<ReceivedMessage, 'status'>) => number | { status: number; headers?: Record<string, string> } = () => 200
  private readonly server: Server
  private waiters: (() => void)[] = []

  private constructor (private readonly path: string) {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const headers = request.headers
        const message = {
          id: String(headers['webhook-id'] ?? ''),
          timestamp: String(headers['webhook-timestamp'] ?? ''),
          signature: String(headers['webhook-signature'] ?? ''),
          body,
          headers,
          verified: this.verify(body, headers),
        }
        const answer = this.answer(message)
        const { status, headers: extra } = typeof answer === 'number' ? { status: answer, headers: {} } : answer
        this.received.push({ ...message, status })
        response.writeHead(status, extra).end(status >= 200 && status < 300 ? '' : 'not now')
        for (const wake of this.waiters.splice(0)) wake()
      })
    })
  }

  static async start (path = '/hooks'): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(path)
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve))
    return receiver
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.path}`
  }

  /** Messages answered 2xx. */
  get accepted (): ReceivedMessage[] {
    return this.received.filter((m) => m.status >= 200 && m.status < 300)
  }

  /** Resolves once `count` messages were answered 2xx (or rejects after `timeoutMs`). */
  async waitForAccepted (count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs
    while (this.accepted.length < count) {
      if (Date.now() > deadline) throw new Error(`receiver: ${this.accepted.length} of ${count} messages accepted after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.accepted
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private verify (body: string, headers: IncomingHttpHeaders): boolean {
    for (const secret of this.secrets) {
      try {
        new Webhook(secret).verify(body, headers as Record<string, string>)
        return true
      } catch {
        // the next secret
      }
    }
    return false
  }
}
