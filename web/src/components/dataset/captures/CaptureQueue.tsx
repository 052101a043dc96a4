import type { ReactNode } from "react";
import type { CaptureRecord } from "../../../api";
import { formatDateTime, formatSeconds } from "../../../format";
import { formatScore } from "../../ScoreChart";
import { KIND_TEXT, verdictText } from "./captureText";

interface Props {
  items: CaptureRecord[];
  selectedId: string | null;
  emptyText: ReactNode;
  onSelect: (capture: CaptureRecord) => void;
}

export function CaptureQueue({ items, selectedId, emptyText, onSelect }: Props) {
  return (
    <div className="table-wrap">
      <table className="data-table captures" data-testid="captures-table">
        <thead>
          <tr>
            <th>Detector</th>
            <th className="num">Peak</th>
            <th className="num">Threshold</th>
            <th>Captured</th>
            <th>Board</th>
            <th>Model</th>
            <th className="num">Length</th>
            <th>Review</th>
          </tr>
        </thead>
        <tbody>
          {items.length === 0 && (
            <tr className="empty-row">
              <td colSpan={8}>{emptyText}</td>
            </tr>
          )}
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
        </tbody>
      </table>
    </div>
  );
}
