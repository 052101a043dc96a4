import type { ReactNode } from "react";
import type { CaptureRecord } from "../../../api";
import { formatDateTime, formatScore, formatSeconds } from "../../../format";
import { ListTable } from "../ListTable";
import { KIND_TEXT, verdictText } from "./captureText";

interface Props {
  items: CaptureRecord[];
  selectedId: string | null;
  emptyText: ReactNode;
  onSelect: (capture: CaptureRecord) => void;
}

export function CaptureQueue({ items, selectedId, emptyText, onSelect }: Props) {
  return (
    <ListTable
      className="captures"
      testId="captures-table"
      label="Captures"
      head={
        <>
          <th>Detector</th>
          <th className="num">Peak</th>
          <th className="num">Threshold</th>
          <th>Captured</th>
          <th>Board</th>
          <th>Model</th>
          <th className="num">Length</th>
          <th>Review</th>
        </>
      }
      columns={8}
      empty={items.length === 0}
      emptyText={emptyText}
    >
      {items.map((capture) => (
        <tr
          key={capture.id}
          data-testid="capture-row"
          data-capture-id={capture.id}
          data-status={capture.status}
          aria-selected={capture.id === selectedId}
          className={`${capture.id === selectedId ? "selected" : ""} ${capture.status === "discarded" ? "discarded" : ""}`}
          onClick={() => onSelect(capture)}
        >
          <td>
            <span className={`kind-pill small ${capture.kind}`}>{KIND_TEXT[capture.kind]}</span>
          </td>
          <td className="num">{formatScore(capture.peak_score)}</td>
          <td className="num muted">{formatScore(capture.threshold)}</td>
          <td className="nowrap">{formatDateTime(capture.captured_at, true)}</td>
          <td>{capture.board}</td>
          <td className="capture-model" title={capture.model_id}>
            <code>{capture.model_id}</code>
          </td>
          <td className="num">{formatSeconds(capture.duration_seconds)}</td>
          <td>
            <span className={`verdict-tag ${capture.verdict ?? capture.status}`}>{verdictText(capture)}</span>
          </td>
        </tr>
      ))}
    </ListTable>
  );
}
