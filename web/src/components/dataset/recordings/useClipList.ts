// The recordings list for one query, refetched when this dataset's clips change.
import { useCallback } from "react";
import { api, type ClipQuery, type ClipRecord } from "../../../api";
import { usePagedList, type ListView } from "../usePagedList";

type Filters = Omit<ClipQuery, "limit" | "offset">;

export interface ClipList extends ListView<ClipRecord> {
  /**
   * Show an edited record at once; the refetch that follows drops it if it no longer
   * matches the filter (a discarded clip leaves the "active" view).
   */
  replace: (record: ClipRecord) => void;
}

export function useClipList(datasetId: string, filters: Filters): ClipList {
  const { items, setItems, total, error, loading, canLoadMore, loadMore, refresh } = usePagedList({
    datasetId,
    filterKey: JSON.stringify(filters),
    fetchPage: (limit) => api.listRecordings(datasetId, { ...filters, limit, offset: 0 }),
    // A reviewed capture becomes a clip of this dataset.
    refreshOn: (event) =>
      event.dataset_id === datasetId && (event.type.startsWith("clip.") || event.type === "capture.reviewed"),
  });

  const replace = useCallback(
    (record: ClipRecord) => {
      setItems((current) => current.map((clip) => (clip.id === record.id ? record : clip)));
      refresh();
    },
    [setItems, refresh],
  );

  return { items, total, error, loading, canLoadMore, loadMore, replace };
}
