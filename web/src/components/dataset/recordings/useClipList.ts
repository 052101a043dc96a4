// The recordings list for one query, refetched when this dataset's clips change.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, errorMessage, type ClipQuery, type ClipRecord } from "../../../api";
import { useEvents } from "../../../events";
import { useCoalesced } from "../../../hooks";

export const PAGE_SIZE = 50;
type Filters = Omit<ClipQuery, "limit" | "offset">;

export interface ClipList {
  items: ClipRecord[];
  total: number | null;
  error: string | null;
  loading: boolean;
  canLoadMore: boolean;
  loadMore: () => void;
  /**
   * Show an edited record at once; the refetch that follows drops it if it no longer
   * matches the filter (a discarded clip leaves the "active" view).
   */
  replace: (record: ClipRecord) => void;
}

export function useClipList(datasetId: string, filters: Filters): ClipList {
  const [items, setItems] = useState<ClipRecord[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [limit, setLimit] = useState(PAGE_SIZE);
  const generation = useRef(0);
  const key = JSON.stringify(filters);

  useEffect(() => setLimit(PAGE_SIZE), [key]);

  const load = useCallback(async () => {
    const ticket = ++generation.current;
    setLoading(true);
    try {
      const page = await api.listRecordings(datasetId, { ...filters, limit, offset: 0 });
      if (ticket !== generation.current) return; // a newer query answered first
      setItems(page.items);
      setTotal(page.total);
      setError(null);
    } catch (e) {
      if (ticket === generation.current) setError(errorMessage(e));
    } finally {
      if (ticket === generation.current) setLoading(false);
    }
  }, [datasetId, key, limit]); // `key` stands for `filters`, compared by value

  useEffect(() => {
    void load();
  }, [load]);

  const refresh = useCoalesced(() => void load(), 200, 1_500);
  useEvents((event) => {
    // A reviewed capture becomes a clip of this dataset.
    if (event.dataset_id !== datasetId) return;
    if (event.type.startsWith("clip.") || event.type === "capture.reviewed") refresh();
  });

  const replace = useCallback(
    (record: ClipRecord) => {
      setItems((current) => current.map((clip) => (clip.id === record.id ? record : clip)));
      refresh();
    },
    [refresh],
  );

  return {
    items,
    total,
    error,
    loading,
    canLoadMore: total !== null && limit < total,
    loadMore: () => setLimit((n) => n + PAGE_SIZE),
    replace,
  };
}
