import type { ComponentChildren } from 'preact'
import { ActionButton } from './ui.js'

/** One column of a `Table`: its header and what a row shows in it. */
export interface Column<T> {
  header: string
  cell: (row: T) => ComponentChildren
  /** A class for the column's cells (`ua`: long, wrapping text). */
  class?: string
}

/** The "Revoke" (or "Delete") button at the end of every row, and what it does. */
export interface RowAction<T> {
  /** The button's text; "Revoke" by default. */
  text?: string
  /** The button's accessible name, which tells the rows apart ("Revoke session …"). */
  label: (row: T) => string
  /** Asked with window.confirm before the action, when given. */
  confirm?: (row: T) => string
  danger?: boolean
  action: (row: T) => Promise<unknown>
}

/**
 * A box a wide table scrolls sideways in, so that a narrow window scrolls
 * the table, never the page; focusable, so a keyboard scrolls it too.
 */
export function TableScroll ({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class='table-scroll' role='region' aria-label={label} tabIndex={0}>
      {children}
    </div>
  )
}

/**
 * The dashboard's one table: a header row, a row per item, and, when
 * `revoke` is given, a last column with that action's button in each row
 * (busy while it runs, its failure shown beside it: ActionButton), inside
 * a TableScroll.
 */
export function Table<T> ({
  testid,
  label,
  columns,
  rows,
  rowKey,
  rowAttributes,
  revoke,
}: {
  testid: string
  /** The accessible name of the table's scrolling region ("Sessions"). */
  label: string
  columns: Column<T>[]
  rows: T[]
  rowKey: (row: T) => string
  /** Extra attributes of a row (data-* names that tests and scripts find it by). */
  rowAttributes?: (row: T) => Record<string, string>
  revoke?: RowAction<T>
}) {
  return (
    <TableScroll label={label}>
      <table data-testid={testid}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.header} scope='col'>
                {column.header}
              </th>
            ))}
            {revoke && (
              <th scope='col'>
                <span class='visually-hidden'>Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowAttributes?.(row)}>
              {columns.map((column) => (
                <td key={column.header} class={column.class}>
                  {column.cell(row)}
                </td>
              ))}
              {revoke && (
                <td>
                  <ActionButton
                    class={revoke.danger ? 'danger' : undefined}
                    label={revoke.label(row)}
                    {...(revoke.confirm ? { confirm: revoke.confirm(row) } : {})}
                    action={() => revoke.action(row)}
                  >
                    {revoke.text ?? 'Revoke'}
                  </ActionButton>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  )
}
