// The captures of one dataset in one status, refetched when its captures change.
import { useCallback, useMemo, useState } from "react";
import { api, type CaptureFilter, type CaptureRecord } from "../../../api";
import { eventDatasetId } from "../../../events";
import { usePagedList, type ListView } from "../usePagedList";

/** Newest first, as the server sends them, with verdicts in flight already applied. */
export interface CaptureList extends ListView<CaptureRecord> {
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
  const fetched = usePagedList({
    datasetId,
    filterKey: filter,
    fetchPage: (limit) => api.listCaptures(datasetId, { status: filter, limit, offset: 0 }),
    refreshOn: (event) => event.type.startsWith("capture.") && eventDatasetId(event) === datasetId,
  });
  const { setItems, total, refresh } = fetched;
  // Verdicts sent but not answered: a refetch that started before the server stored one
  // must not bring the capture back into the unreviewed queue.
  const [held, setHeld] = useState<ReadonlyMap<string, CaptureRecord>>(new Map());

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
      if (saved) setItems((current) => current.map((c) => (c.id === saved.id ? saved : c)));
      refresh();
    },
    [setItems, refresh],
  );

  const items = useMemo(
    () => fetched.items.map((c) => held.get(c.id) ?? c).filter((c) => matches(filter, c)),
    [fetched.items, held, filter],
  );

  return {
    items,
    total: total === null ? null : Math.max(0, total - (fetched.items.length - items.length)),
    error: fetched.error,
    loading: fetched.loading,
    canLoadMore: fetched.canLoadMore,
    loadMore: fetched.loadMore,
    hold,
    settle,
    refresh,
  };
}
