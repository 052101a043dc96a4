// The captures of one dataset in one status, refetched when its captures change.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, errorMessage, type CaptureFilter, type CaptureRecord } from "../../../api";
import { eventDatasetId, useEvents } from "../../../events";
import { useCoalesced } from "../../../hooks";

export const PAGE_SIZE = 50;

export interface CaptureList {
  /** Newest first, as the server sends them, with verdicts in flight already applied. */
  items: CaptureRecord[];
  total: number | null;
  error: string | null;
  loading: boolean;
  canLoadMore: boolean;
  loadMore: () => void;
  /**
   * Show a verdict before the server has answered, so the reviewer can judge the next
   * capture at once; `settle` ends it with the server's record (or `null` on failure).
   */
  hold: (record: CaptureRecord) => void;
  settle: (captureId: string, saved: CaptureRecord | null) => void;
  refresh: () => void;
}

function matches(filter: CaptureFilter, capture: CaptureRecord): boolean {
  return filter === "all" || capture.status === filter;
}

export function useCaptureList(datasetId: string, filter: CaptureFilter): CaptureList {
  const [fetched, setFetched] = useState<CaptureRecord[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [limit, setLimit] = useState(PAGE_SIZE);
  // Verdicts sent but not answered: a refetch that started before the server stored one
  // must not bring the capture back into the unreviewed queue.
  const [held, setHeld] = useState<ReadonlyMap<string, CaptureRecord>>(new Map());
  const generation = useRef(0);

  useEffect(() => setLimit(PAGE_SIZE), [filter]);

  const load = useCallback(async () => {
    const ticket = ++generation.current;
    setLoading(true);
    try {
      const page = await api.listCaptures(datasetId, { status: filter, limit, offset: 0 });
      if (ticket !== generation.current) return; // a newer query answered first
      setFetched(page.items);
      setTotal(page.total);
      setError(null);
    } catch (e) {
      if (ticket === generation.current) setError(errorMessage(e));
    } finally {
      if (ticket === generation.current) setLoading(false);
    }
  }, [datasetId, filter, limit]);

  useEffect(() => {
    void load();
  }, [load]);

  const refresh = useCoalesced(() => void load(), 200, 1_500);
  useEvents((event) => {
    if (event.type.startsWith("capture.") && eventDatasetId(event) === datasetId) refresh();
  });

  const hold = useCallback((record: CaptureRecord) => {
    setHeld((current) => new Map(current).set(record.id, record));
  }, []);

  const settle = useCallback(
    (captureId: string, saved: CaptureRecord | null) => {
      setHeld((current) => {
        const next = new Map(current);
        next.delete(captureId);
        return next;
      });
      if (saved) setFetched((current) => current.map((c) => (c.id === saved.id ? saved : c)));
      refresh();
    },
    [refresh],
  );

  const items = useMemo(
    () => fetched.map((c) => held.get(c.id) ?? c).filter((c) => matches(filter, c)),
    [fetched, held, filter],
  );

  return {
    items,
    total: total === null ? null : Math.max(0, total - (fetched.length - items.length)),
    error,
    loading,
    canLoadMore: total !== null && limit < total,
    loadMore: () => setLimit((n) => n + PAGE_SIZE),
    hold,
    settle,
    refresh,
  };
}
