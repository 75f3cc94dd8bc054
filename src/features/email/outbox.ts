import { randomUUID } from 'node:crypto'
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import type { OutboxMessage as OutboxMessageView, OutboxStatus } from './schemas.js'
import type { Page } from '../../shared/pagination-schemas.js'
import { EMAIL_TEMPLATES, LINK_PAGES, secretLink, type EmailTemplate, type LinkPage, type EmailTemplates, type RenderedEmail } from './email-templates.js'
import { createdBefore, decodeCursor, isCreatedCursor, pageOf } from '../../shared/pagination.js'
import { seal, unseal } from '../../shared/derived-keys.js'

/**
 * The transactional outbox (DESIGN §3.11): a message is a row written in the
 * same transaction as the change it announces (a secret, a new password),
 * so no message is lost for a committed change and none is sent for a
 * rolled-back one. The worker in mail-delivery.ts sends it later. The secret
 * a message carries is stored encrypted, bound to its row, and erased once
 * the message is sent or given up.
 */

export interface NewMessage {
  recipient: string
  template: EmailTemplate
  /** Shown by the template; never a secret (it stays readable in the row). */
  data: Record<string, string>
  /** The token of the message's link; required by the templates with a link. */
  secret?: string
}

/** A row as the delivery worker and the admin list read it. */
export interface OutboxRow {
  id: string
  recipient: string
  template: string
  data: unknown
  secretEncrypted: Uint8Array | null
}

export interface OutboxOptions {
  encryptionKey: Buffer
  templates: EmailTemplates
  productName: string
  pages: Record<LinkPage, string>
  /** The development mailbox: admins may read rendered messages. */
  devMailbox: boolean
  now: () => number
  /** Told of each message written, with its rendered form (the development log of links). */
  onEnqueued?: (message: { id: string; recipient: string; template: EmailTemplate; rendered: RenderedEmail; link: string | null }) => void
}

const isTemplate = (name: string): name is EmailTemplate => (EMAIL_TEMPLATES as readonly string[]).includes(name)

export class Outbox {
  constructor (
    private readonly db: PrismaClient,
    private readonly options: OutboxOptions
  ) {}

  /** Writes a message inside the caller's transaction; its id. */
  async enqueue (tx: Prisma.TransactionClient, message: NewMessage): Promise<string> {
    const needsSecret = Object.hasOwn(LINK_PAGES, message.template)
    if (needsSecret !== (message.secret !== undefined)) {
      throw new Error(`email template ${message.template} ${needsSecret ? 'needs' : 'takes no'} secret`)
    }
    const id = randomUUID()
    const secretEncrypted = message.secret === undefined ? null : seal(this.options.encryptionKey, Buffer.from(message.secret), id)
    await tx.emailOutbox.create({
      data: {
        id,
        recipient: message.recipient,
        template: message.template,
        data: message.data,
        secretEncrypted,
        nextAttemptAt: new Date(this.options.now()),
      },
    })
    if (this.options.onEnqueued) {
      const link = this.linkOf(message.template, message.secret ?? null)
      this.options.onEnqueued({ id, recipient: message.recipient, template: message.template, rendered: this.renderValues(message.template, message.data, link), link })
    }
    return id
  }

  /** The message a row describes, its link decrypted; throws when the row needs a secret it no longer has. */
  render (row: OutboxRow): RenderedEmail {
    if (!isTemplate(row.template)) throw new Error(`outbox row ${row.id}: unknown template ${row.template}`)
    const secret = row.secretEncrypted === null ? null : unseal(this.options.encryptionKey, row.secretEncrypted, row.id).toString('utf8')
    if (Object.hasOwn(LINK_PAGES, row.template) && secret === null) throw new Error(`outbox row ${row.id}: its secret was erased`)
    return this.renderValues(row.template, row.data as Record<string, string>, this.linkOf(row.template, secret))
  }

  /**
   * Messages for the admin API, newest first. The rendered body (with its
   * link) only in the development mailbox: where mail really goes out, an
   * admin reading a user's reset link could take over the account.
   */
  async list (input: { status?: OutboxStatus | undefined; recipient?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Page<OutboxMessageView>> {
    const after = input.cursor ? decodeCursor(input.cursor, isCreatedCursor) : undefined
    const status: Prisma.EmailOutboxWhereInput =
      input.status === 'sent' ? { sentAt: { not: null } } : input.status === 'dead' ? { deadAt: { not: null } } : input.status === 'pending' ? { sentAt: null, deadAt: null } : {}
    const rows = await this.db.emailOutbox.findMany({
      where: { ...status, ...(input.recipient ? { recipient: input.recipient } : {}), ...(after ? createdBefore(after) : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: input.limit + 1,
    })
    const page = pageOf(rows, input.limit)
    return {
      nextCursor: page.nextCursor,
      items: page.items.map((row) => ({
        id: row.id,
        recipient: row.recipient,
        template: row.template,
        status: row.sentAt ? 'sent' : row.deadAt ? 'dead' : 'pending',
        attempts: row.attempts,
        nextAttemptAt: row.nextAttemptAt,
        lastError: row.lastError,
        createdAt: row.createdAt,
        sentAt: row.sentAt,
        deadAt: row.deadAt,
        rendered: this.options.devMailbox && (row.secretEncrypted !== null || !Object.hasOwn(LINK_PAGES, row.template)) ? this.render(row) : null,
      })),
    }
  }

  private linkOf (template: EmailTemplate, secret: string | null): string | null {
    if (secret === null || !Object.hasOwn(LINK_PAGES, template)) return null
    const page = LINK_PAGES[template as keyof typeof LINK_PAGES]
    return secretLink(this.options.pages[page], secret)
  }

  private renderValues (template: EmailTemplate, data: Record<string, string>, link: string | null): RenderedEmail {
    return this.options.templates.render(template, { ...data, productName: this.options.productName, ...(link === null ? {} : { link }) })
  }
}
