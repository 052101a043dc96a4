// A list the server sends in pages, newest query winning, refetched when the events say it changed.
import { useCallback, useEffect, useRef, useState, type Dispatch, type SetStateAction } from "react";
import { errorMessage, type EventRecord } from "../../api";
import { useEvents } from "../../events";
import { useCoalesced } from "../../hooks";

export const PAGE_SIZE = 50;

/** What a tab shows of a paged list. */
export interface ListView<T> {
  items: T[];
  total: number | null;
  error: string | null;
  loading: boolean;
  canLoadMore: boolean;
  loadMore: () => void;
}

export interface PagedList<T> extends ListView<T> {
  /** Edit the items as the server sent them; the next refetch replaces them. */
  setItems: Dispatch<SetStateAction<T[]>>;
  /** Refetch soon; a burst of calls makes one request. */
  refresh: () => void;
}

interface Query<T> {
  datasetId: string;
  /** The filters, compared by value: a change starts again from the first page. */
  filterKey: string;
  /** The first `limit` items for the current filters. */
  fetchPage: (limit: number) => Promise<{ items: T[]; total: number }>;
  /** Whether an event means the list may have changed. */
  refreshOn: (event: EventRecord) => boolean;
}

export function usePagedList<T>({ datasetId, filterKey, fetchPage, refreshOn }: Query<T>): PagedList<T> {
  const [items, setItems] = useState<T[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [limit, setLimit] = useState(PAGE_SIZE);
  const generation = useRef(0);
  const fetchLatest = useRef(fetchPage);
  fetchLatest.current = fetchPage;

  useEffect(() => setLimit(PAGE_SIZE), [filterKey]);

  const load = useCallback(async () => {
    const ticket = ++generation.current;
    setLoading(true);
    try {
      const page = await fetchLatest.current(limit);
      if (ticket !== generation.current) return; // a newer query answered first
      setItems(page.items);
      setTotal(page.total);
      setError(null);
    } catch (e) {
      if (ticket === generation.current) setError(errorMessage(e));
    } finally {
      if (ticket === generation.current) setLoading(false);
    }
  }, [datasetId, filterKey, limit]); // `fetchPage` reads no more than these

  useEffect(() => {
    void load();
  }, [load]);

  const refresh = useCoalesced(() => void load(), 200, 1_500);
  useEvents((event) => {
    if (refreshOn(event)) refresh();
  });

  return {
    items,
    setItems,
    total,
    error,
    loading,
    canLoadMore: total !== null && limit < total,
    loadMore: () => setLimit((n) => n + PAGE_SIZE),
    refresh,
  };
}
