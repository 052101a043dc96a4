import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import {
  api,
  CAPTURE_FILTERS,
  errorMessage,
  type CaptureFilter,
  type CaptureRecord,
  type CaptureVerdict,
} from "../../../api";
import { useNotify } from "../../../notifications";
import type { WaveformHandle } from "../../WaveformPlayer";
import { LoadMore } from "../ListTable";
import { useListKeys } from "../useListKeys";
import { CaptureDetail } from "./CaptureDetail";
import { CaptureQueue } from "./CaptureQueue";
import { useCaptureList } from "./useCaptureList";

type Deletable = "unreviewed" | "discarded";

const FILTER_TEXT: Record<CaptureFilter, string> = {
  unreviewed: "to review",
  reviewed: "reviewed",
  discarded: "discarded",
  all: "all",
};

const EMPTY_TEXT: Record<CaptureFilter, ReactNode> = {
  unreviewed: (
    <>
      Nothing to review. A board running <code>waketrain detect --capture-dir …</code> sends back what it woke on, and
      what nearly woke it.
    </>
  ),
  reviewed: "No reviewed captures yet.",
  discarded: "No discarded captures.",
  all: "No captures yet.",
};

/** The verdict as it will read once stored, shown before the server answers. */
function judged(capture: CaptureRecord, verdict: CaptureVerdict): CaptureRecord {
  if (verdict === "discard") return { ...capture, status: "discarded", verdict: null };
  return { ...capture, status: "reviewed", verdict };
}

export function CapturesTab({
  datasetId,
  active,
  toReview,
}: {
  datasetId: string;
  active: boolean;
  /** From the dataset summary, which follows the event feed. */
  toReview: number;
}) {
  const notify = useNotify();
  const [filter, setFilter] = useState<CaptureFilter>("unreviewed");
  const list = useCaptureList(datasetId, filter);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const player = useRef<WaveformHandle>(null);
  const [confirming, setConfirming] = useState<Deletable | null>(null);
  const [deleting, setDeleting] = useState(false);
  const inFlight = useRef(new Set<string>());

  // When the selected capture leaves the list (deleted, or reviewed elsewhere), the one
  // that takes its place is selected; the queue always has a capture in hand.
  const lastIndex = useRef(0);
  useEffect(() => {
    const index = list.items.findIndex((c) => c.id === selectedId);
    if (index >= 0) {
      lastIndex.current = index;
      return;
    }
    if (list.items.length > 0) setSelectedId(list.items[Math.min(lastIndex.current, list.items.length - 1)].id);
  }, [list.items, selectedId]);
  const selected = list.items.find((c) => c.id === selectedId) ?? null;

  const select = useCallback((capture: CaptureRecord) => {
    setSelectedId(capture.id);
    document.querySelector(`tr[data-capture-id="${capture.id}"]`)?.scrollIntoView({ block: "nearest" });
  }, []);

  const review = useCallback(
    (capture: CaptureRecord, verdict: CaptureVerdict) => {
      // The server takes one verdict per capture; a key pressed twice before a render must not send two.
      if (capture.status !== "unreviewed" || inFlight.current.has(capture.id)) return;
      inFlight.current.add(capture.id);
      const items = list.items;
      const index = items.findIndex((c) => c.id === capture.id);
      const after = judged(capture, verdict);
      const stays = filter === "all" || filter === after.status;
      const next = items[index + 1] ?? (stays ? capture : items[index - 1]) ?? null;
      list.hold(after);
      if (next) select(next);
      api
        .reviewCapture(capture.id, verdict)
        .then(
          (saved) => list.settle(capture.id, saved),
          (e: unknown) => {
            list.settle(capture.id, null);
            notify("Could not review the capture", { kind: "error", body: errorMessage(e) });
          },
        )
        .finally(() => inFlight.current.delete(capture.id));
    },
    [filter, list, notify, select],
  );

  useListKeys({
    active,
    items: list.items,
    selectedId,
    select,
    player,
    actions: {
      p: (capture) => review(capture, "positive"),
      n: (capture) => review(capture, "negative"),
      x: (capture) => review(capture, "discard"),
    },
    onEscape: confirming ? () => setConfirming(null) : undefined,
  });

  const bulkDelete = async (status: Deletable) => {
    setDeleting(true);
    try {
      const { deleted } = await api.deleteCaptures(datasetId, status);
      notify(`Deleted ${deleted} ${status} capture${deleted === 1 ? "" : "s"}`, { kind: "success" });
      list.refresh();
    } catch (e) {
      notify("Could not delete the captures", { kind: "error", body: errorMessage(e) });
    } finally {
      setDeleting(false);
      setConfirming(null);
    }
  };

  return (
    <div className="captures-tab">
      <div className="toolbar">
        <label className="inline-field">
          <span>Show</span>
          <select
            data-testid="capture-filter"
            value={filter}
            onChange={(e) => {
              lastIndex.current = 0;
              setFilter(e.target.value as CaptureFilter);
              e.currentTarget.blur(); // hand the keyboard back to the shortcuts
            }}
          >
            {CAPTURE_FILTERS.map((f) => (
              <option key={f} value={f}>
                {FILTER_TEXT[f]}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">
          <strong data-testid="captures-to-review">{toReview}</strong> to review
          {filter !== "unreviewed" && (
            <>
              {" "}
              · <span data-testid="captures-total">{list.total ?? 0}</span> shown
            </>
          )}
          {list.loading && " · loading…"}
        </span>
        <span className="toolbar-spacer" />
        {confirming ? (
          <span className="confirm-bar" role="group" aria-label="Confirm deletion" data-testid="captures-delete-confirm-bar">
            {confirming === "unreviewed"
              ? `Delete all ${toReview} unreviewed captures? Their audio is removed without review.`
              : "Delete the records of all discarded captures?"}
            <button
              className="btn small danger"
              data-testid="captures-delete-confirm"
              disabled={deleting}
              onClick={() => void bulkDelete(confirming)}
            >
              {deleting ? "Deleting…" : "Delete"}
            </button>
            <button className="btn small" data-testid="captures-delete-cancel" disabled={deleting} onClick={() => setConfirming(null)}>
              Cancel
            </button>
          </span>
        ) : (
          <>
            <button
              className="btn small danger"
              data-testid="captures-delete-unreviewed"
              disabled={toReview === 0}
              onClick={() => setConfirming("unreviewed")}
            >
              Delete unreviewed…
            </button>
            <button className="btn small danger" data-testid="captures-delete-discarded" onClick={() => setConfirming("discarded")}>
              Delete discarded…
            </button>
          </>
        )}
      </div>

      <CaptureDetail ref={player} capture={selected} onVerdict={review} />

      {list.error && <p className="form-error">{list.error}</p>}
      <CaptureQueue
        items={list.items}
        selectedId={selectedId}
        onSelect={select}
        emptyText={list.loading && list.total === null ? "Loading…" : EMPTY_TEXT[filter]}
      />
      <LoadMore list={list} />
    </div>
  );
}
