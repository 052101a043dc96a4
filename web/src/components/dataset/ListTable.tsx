import type { ReactNode } from "react";
import type { ListView } from "./usePagedList";

interface Props {
  /** Added to `data-table`: names the table for the stylesheet. */
  className: string;
  testId: string;
  /** What the table lists, for a screen reader ("Recordings"). */
  label: string;
  /** The header cells. */
  head: ReactNode;
  /** How many columns the empty row spans. */
  columns: number;
  empty: boolean;
  emptyText: ReactNode;
  /** The rows. */
  children: ReactNode;
}

/** A table of records, one a row, that says `emptyText` while it has none. */
export function ListTable({ className, testId, label, head, columns, empty, emptyText, children }: Props) {
  return (
    // Focusable: on a phone the table scrolls sideways in here, and the keyboard scrolls it too.
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      <table className={`data-table ${className}`} data-testid={testId}>
        <thead>
          <tr>{head}</tr>
        </thead>
        <tbody>
          {empty && (
            <tr className="empty-row">
              <td colSpan={columns}>{emptyText}</td>
            </tr>
          )}
          {children}
        </tbody>
      </table>
    </div>
  );
}

/** The button under a list that has more pages on the server. */
export function LoadMore({ list }: { list: ListView<unknown> }) {
  if (!list.canLoadMore) return null;
  return (
    <div className="load-more">
      <button className="btn" onClick={list.loadMore} disabled={list.loading}>
        Load more ({list.items.length} of {list.total})
      </button>
    </div>
  );
}
