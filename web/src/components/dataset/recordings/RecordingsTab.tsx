import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  api,
  errorMessage,
  LABELS,
  urls,
  type ClipRecord,
  type DeletedFilter,
  type Label,
  type SortKey,
} from "../../../api";
import { formatDateTime } from "../../../format";
import { useDebounced } from "../../../hooks";
import { useNotify } from "../../../notifications";
import { WaveformPlayer, type WaveformHandle } from "../../WaveformPlayer";
import { ShortcutLegend, type Shortcut } from "../../ShortcutLegend";
import { LoadMore } from "../ListTable";
import { useListKeys } from "../useListKeys";
import { RecordingsTable } from "./RecordingsTable";
import { DuplicatesPanel } from "./DuplicatesPanel";
import { useClipList } from "./useClipList";

const SHORTCUTS: Shortcut[] = [
  ["Space", "play / pause"],
  ["j ↓", "next"],
  ["k ↑", "previous"],
  ["d", "discard / restore"],
  ["p n x", "positive / negative / noise"],
];

export function RecordingsTab({ datasetId, active }: { datasetId: string; active: boolean }) {
  const notify = useNotify();
  const [label, setLabel] = useState<Label | "">("");
  const [speakerInput, setSpeakerInput] = useState("");
  const speaker = useDebounced(speakerInput.trim(), 300);
  const [deleted, setDeleted] = useState<DeletedFilter>("exclude");
  const [sort, setSort] = useState<SortKey>("created_at");
  const [order, setOrder] = useState<"asc" | "desc">("desc");
  const filters = useMemo(() => ({ label, speaker, deleted, sort, order }), [label, speaker, deleted, sort, order]);
  const list = useClipList(datasetId, filters);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [selectedClip, setSelectedClip] = useState<ClipRecord | null>(null);
  const player = useRef<WaveformHandle>(null);

  // After an edit that removes the selected row from this view, the row that takes its place
  // is selected, so a reviewer can keep pressing d / p / n / x down the list.
  const followAfterEdit = useRef<{ id: string; index: number } | null>(null);

  useEffect(() => {
    const found = list.items.find((clip) => clip.id === selectedId);
    if (found) {
      setSelectedClip(found);
      return;
    }
    const follow = followAfterEdit.current;
    if (follow && follow.id === selectedId && list.items.length > 0) {
      followAfterEdit.current = null;
      const next = list.items[Math.min(follow.index, list.items.length - 1)];
      setSelectedId(next.id);
      setSelectedClip(next);
    }
  }, [list.items, selectedId]);

  const rememberPlace = (clip: ClipRecord) => {
    if (clip.id === selectedId) {
      followAfterEdit.current = { id: clip.id, index: list.items.findIndex((c) => c.id === clip.id) };
    }
  };

  const select = useCallback((clip: ClipRecord) => {
    setSelectedId(clip.id);
    setSelectedClip(clip);
    document.querySelector(`[data-clip-id="${clip.id}"]`)?.scrollIntoView({ block: "nearest" });
  }, []);

  const changeSort = (key: SortKey) => {
    if (key === sort) setOrder((o) => (o === "asc" ? "desc" : "asc"));
    else {
      setSort(key);
      setOrder(key === "speaker" || key === "label" ? "asc" : "desc");
    }
  };

  const toggleDiscard = useCallback(
    async (clip: ClipRecord) => {
      rememberPlace(clip);
      try {
        const updated = clip.deleted_at ? await api.restoreRecording(clip.id) : await api.discardRecording(clip.id);
        list.replace(updated);
        notify(updated.deleted_at ? "Clip discarded" : "Clip restored", { kind: "success" });
      } catch (e) {
        notify("Could not change the clip", { kind: "error", body: errorMessage(e) });
      }
    },
    [list, notify],
  );

  const relabel = useCallback(
    async (clip: ClipRecord, newLabel: Label) => {
      if (clip.label === newLabel) return;
      rememberPlace(clip);
      try {
        list.replace(await api.updateRecording(clip.id, { label: newLabel }));
        notify(`Relabelled as ${newLabel}`, { kind: "success" });
      } catch (e) {
        notify("Could not relabel the clip", { kind: "error", body: errorMessage(e) });
      }
    },
    [list, notify],
  );

  useListKeys({
    active,
    items: list.items,
    selectedId,
    select,
    player,
    actions: {
      d: (clip) => void toggleDiscard(clip),
      p: (clip) => void relabel(clip, "positive"),
      n: (clip) => void relabel(clip, "negative"),
      x: (clip) => void relabel(clip, "noise"),
    },
  });

  const speakers = useMemo(
    () => [...new Set(list.items.map((clip) => clip.speaker).filter((s): s is string => !!s))].sort(),
    [list.items],
  );

  return (
    <div className="recordings-tab">
      <DuplicatesPanel datasetId={datasetId} />
      <div className="toolbar">
        <label className="inline-field">
          <span>Label</span>
          <select data-testid="filter-label" value={label} onChange={(e) => setLabel(e.target.value as Label | "")}>
            <option value="">all labels</option>
            {LABELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>Speaker</span>
          <input
            data-testid="filter-speaker"
            list="known-speakers"
            placeholder="any"
            value={speakerInput}
            onChange={(e) => setSpeakerInput(e.target.value)}
          />
          <datalist id="known-speakers">
            {speakers.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <label className="inline-field">
          <span>Show</span>
          <select data-testid="filter-deleted" value={deleted} onChange={(e) => setDeleted(e.target.value as DeletedFilter)}>
            <option value="exclude">active</option>
            <option value="only">discarded</option>
            <option value="include">all</option>
          </select>
        </label>
        <span className="toolbar-spacer" />
        <span className="muted">
          <span data-testid="recordings-total">{list.total ?? 0}</span> clips
          {list.loading && " · loading…"}
        </span>
      </div>

      <div className="preview card">
        <WaveformPlayer
          ref={player}
          url={selectedClip ? urls.clipAudio(selectedClip.id) : null}
          waveformTestId="waveform"
          toggleTestId="play-toggle"
          caption={
            selectedClip
              ? `${selectedClip.label} · ${selectedClip.speaker ?? "no speaker"} · ${formatDateTime(selectedClip.created_at)}${
                  selectedClip.quality_reasons?.length ? ` · ${selectedClip.quality_reasons.join(", ")}` : ""
                }`
              : "Select a recording to hear it"
          }
        />
        <ShortcutLegend shortcuts={SHORTCUTS} />
      </div>

      {list.error && <p className="form-error">{list.error}</p>}
      <RecordingsTable
        items={list.items}
        selectedId={selectedId}
        sort={sort}
        order={order}
        onSort={changeSort}
        onSelect={select}
        onToggleDiscard={(clip) => void toggleDiscard(clip)}
        onRelabel={(clip, l) => void relabel(clip, l)}
        emptyText={
          list.loading && list.total === null
            ? "Loading…"
            : label || speaker || deleted !== "exclude"
              ? "No recordings match these filters."
              : "No recordings yet — record or upload some."
        }
      />
      <LoadMore list={list} />
    </div>
  );
}
