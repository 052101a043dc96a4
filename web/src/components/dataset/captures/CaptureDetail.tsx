import { forwardRef, useState } from "react";
import { urls, type CaptureRecord, type CaptureVerdict } from "../../../api";
import { formatDateTime, formatScore, formatSeconds } from "../../../format";
import { ScoreChart } from "../../ScoreChart";
import { ShortcutLegend, type Shortcut } from "../../ShortcutLegend";
import { WaveformPlayer, type WaveformHandle } from "../../WaveformPlayer";
import { KIND_TEXT, peakTime, verdictText } from "./captureText";

export const CAPTURE_SHORTCUTS: Shortcut[] = [
  ["Space", "play / pause"],
  ["j ↓", "next"],
  ["k ↑", "previous"],
  ["p", "real wake (positive clip)"],
  ["n", "false wake (negative clip)"],
  ["x", "discard"],
];

const VERDICT_BUTTONS: { verdict: CaptureVerdict; label: string; key: string; className: string }[] = [
  { verdict: "positive", label: "Real wake", key: "p", className: "positive" },
  { verdict: "negative", label: "False wake", key: "n", className: "negative" },
  { verdict: "discard", label: "Discard", key: "x", className: "ghost" },
];

/** Reviewed audio lives on as the clip it became; discarded audio is gone. */
function audioUrl(capture: CaptureRecord): string | null {
  if (capture.status === "discarded") return null;
  if (capture.clip_id) return urls.clipAudio(capture.clip_id);
  return urls.captureAudio(capture.id);
}

function thoughtText(capture: CaptureRecord): string {
  const peak = formatScore(capture.peak_score);
  const threshold = formatScore(capture.threshold);
  return capture.kind === "wake"
    ? `The detector woke: the score peaked at ${peak}, over the threshold of ${threshold}.`
    : `The detector did not wake: the score came up to ${peak}, under the threshold of ${threshold}.`;
}

interface Props {
  capture: CaptureRecord | null;
  onVerdict: (capture: CaptureRecord, verdict: CaptureVerdict) => void;
}

export const CaptureDetail = forwardRef<WaveformHandle, Props>(function CaptureDetail({ capture, onVerdict }, player) {
  const [playhead, setPlayhead] = useState(0);
  if (!capture) {
    return (
      <div className="card capture-detail empty" data-testid="capture-detail">
        <WaveformPlayer ref={player} url={null} waveformTestId="capture-waveform" toggleTestId="capture-play" caption="Select a capture to hear it" />
      </div>
    );
  }
  const peakAt = peakTime(capture);
  const times = capture.scores.map((_, i) => (i + 1) * capture.hop_seconds);
  const open = capture.status === "unreviewed";
  return (
    <div className="card capture-detail" data-testid="capture-detail" data-capture-id={capture.id}>
      <div className="capture-head">
        <div>
          <span className={`kind-pill ${capture.kind}`} data-testid="capture-kind">
            {KIND_TEXT[capture.kind]}
          </span>
          <span className="capture-thought">{thoughtText(capture)}</span>
        </div>
        <div className="verdict-buttons">
          {open ? (
            VERDICT_BUTTONS.map(({ verdict, label, key, className }) => (
              <button
                key={verdict}
                className={`btn verdict ${className}`}
                data-testid={`capture-${verdict}`}
                onClick={(event) => {
                  onVerdict(capture, verdict);
                  event.currentTarget.blur(); // hand the keyboard back to the shortcuts
                }}
              >
                {label} <kbd>{key}</kbd>
              </button>
            ))
          ) : (
            <span className={`status-pill ${capture.status}`} data-testid="capture-verdict">
              {verdictText(capture)}
              {capture.reviewed_by && ` by ${capture.reviewed_by}`}
            </span>
          )}
        </div>
      </div>
      <div className="preview">
        <WaveformPlayer
          ref={player}
          url={audioUrl(capture)}
          waveformTestId="capture-waveform"
          toggleTestId="capture-play"
          height={72}
          onTime={setPlayhead}
          caption={capture.status === "discarded" ? "audio discarded" : `${formatSeconds(capture.duration_seconds)} around the peak`}
        />
        <ShortcutLegend shortcuts={CAPTURE_SHORTCUTS} />
      </div>
      <ScoreChart
        times={times}
        scores={capture.scores}
        threshold={capture.threshold}
        durationSeconds={capture.duration_seconds}
        marks={peakAt === null ? [] : [{ time: peakAt, label: `peak ${formatScore(capture.peak_score)} at ${peakAt.toFixed(2)} s` }]}
        testId="capture-chart"
        height={200}
        playhead={playhead}
      />
      <dl className="capture-facts">
        <dt>Model</dt>
        <dd>
          <code data-testid="capture-model">{capture.model_id}</code>
        </dd>
        <dt>Board</dt>
        <dd data-testid="capture-board">{capture.board}</dd>
        <dt>Captured</dt>
        <dd>{formatDateTime(capture.captured_at, true)}</dd>
        <dt>Received</dt>
        <dd>{formatDateTime(capture.received_at, true)}</dd>
        {capture.reviewed_at && (
          <>
            <dt>Reviewed</dt>
            <dd>
              {formatDateTime(capture.reviewed_at, true)}
              {capture.clip_id && <span className="muted"> · clip {capture.clip_id.slice(0, 8)}</span>}
            </dd>
          </>
        )}
      </dl>
    </div>
  );
});
