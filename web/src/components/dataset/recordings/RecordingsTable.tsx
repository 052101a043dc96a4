import { LABELS, type ClipRecord, type Label, type SortKey } from "../../../api";
import { formatDateTime, formatSeconds } from "../../../format";
import { ListTable } from "../ListTable";

const COLUMNS: { key: SortKey; testId: string; title: string; className?: string }[] = [
  { key: "speaker", testId: "sort-speaker", title: "Speaker" },
  { key: "created_at", testId: "sort-date", title: "Date" },
  { key: "duration_seconds", testId: "sort-length", title: "Length", className: "num" },
  { key: "quality_score", testId: "sort-quality", title: "Quality", className: "num" },
  { key: "label", testId: "sort-label", title: "Label" },
];

interface Props {
  items: ClipRecord[];
  selectedId: string | null;
  sort: SortKey;
  order: "asc" | "desc";
  emptyText: string;
  onSort: (key: SortKey) => void;
  onSelect: (clip: ClipRecord) => void;
  onToggleDiscard: (clip: ClipRecord) => void;
  onRelabel: (clip: ClipRecord, label: Label) => void;
}

export function RecordingsTable(props: Props) {
  const { items, selectedId, sort, order, emptyText, onSort, onSelect, onToggleDiscard, onRelabel } = props;
  return (
    <ListTable
      className="recordings"
      testId="recordings-table"
      label="Recordings"
      head={
        <>
          <th>Clip</th>
          {COLUMNS.map((column) => (
            <th
              key={column.key}
              className={column.className}
              aria-sort={sort === column.key ? (order === "asc" ? "ascending" : "descending") : "none"}
            >
              <button className="sort-button" data-testid={column.testId} onClick={() => onSort(column.key)}>
                {column.title}
                <span className="sort-arrow">{sort === column.key ? (order === "asc" ? "▲" : "▼") : ""}</span>
              </button>
            </th>
          ))}
          <th>Source</th>
          <th aria-label="Actions" />
        </>
      }
      columns={COLUMNS.length + 3}
      empty={items.length === 0}
      emptyText={emptyText}
    >
      {items.map((clip) => {
        const discarded = clip.deleted_at !== null;
        return (
          <tr
            key={clip.id}
            data-testid="recording-row"
            data-clip-id={clip.id}
            data-deleted={discarded ? "true" : "false"}
            aria-selected={clip.id === selectedId}
            className={`${clip.id === selectedId ? "selected" : ""} ${discarded ? "discarded" : ""}`}
            onClick={(event) => {
              if ((event.target as HTMLElement).closest("button, select, a")) return;
              onSelect(clip);
            }}
          >
            <td className="clip-name" title={clip.id}>
              {clip.original_filename ?? clip.id.slice(0, 8)}
              {discarded && <span className="tag discarded-tag">discarded</span>}
            </td>
            <td>{clip.speaker ?? <span className="muted">—</span>}</td>
            <td className="nowrap">{formatDateTime(clip.created_at)}</td>
            <td className="num">{formatSeconds(clip.duration_seconds)}</td>
            <td className="num">
              <QualityBadge clip={clip} />
            </td>
            <td>
              <select
                data-testid="row-label"
                aria-label={`Label of ${clip.original_filename ?? clip.id.slice(0, 8)}`}
                className={`label-select ${clip.label}`}
                value={clip.label}
                onChange={(e) => {
                  onRelabel(clip, e.target.value as Label);
                  e.currentTarget.blur(); // hand the keyboard back to the shortcuts
                }}
              >
                {LABELS.map((l) => (
                  <option key={l} value={l}>
                    {l}
                  </option>
                ))}
              </select>
            </td>
            <td className="muted">{clip.source}</td>
            <td className="actions">
              <button className={`btn small ${discarded ? "" : "ghost"}`} data-testid="row-discard" onClick={() => onToggleDiscard(clip)}>
                {discarded ? "Restore" : "Discard"}
              </button>
            </td>
          </tr>
        );
      })}
    </ListTable>
  );
}

function QualityBadge({ clip }: { clip: ClipRecord }) {
  if (clip.quality_score === null) {
    return <span className="muted" title="Quality is measured in the background">…</span>;
  }
  const level = clip.quality_score >= 80 ? "good" : clip.quality_score >= 60 ? "fair" : "poor";
  return (
    <span className={`quality ${level}`} title={clip.quality_reasons?.join("; ") || "no problems found"}>
      {clip.quality_score}
    </span>
  );
}
