import { useRef, useState } from "react";
import { api, errorMessage, urls, type Label, type LongRecording, type Segment } from "../../api";
import { useNotify } from "../../notifications";
import { LabelSelect } from "../LabelSelect";

interface Piece extends Segment {
  keep: boolean;
}

function SecondsInput(props: { label: string; testId: string; value: number; onChange: (seconds: number) => void }) {
  return (
    <input
      type="number"
      step="0.05"
      min={0}
      aria-label={props.label}
      data-testid={props.testId}
      value={props.value}
      onChange={(e) => props.onChange(Number(e.target.value))}
    />
  );
}

/** A recording longer than a clip: the VAD proposes its phrases, the operator listens to each,
 * adjusts or drops it, and the kept pieces become clips. */
export function LongRecordingSplit({ datasetId }: { datasetId: string }) {
  const notify = useNotify();
  const [recording, setRecording] = useState<LongRecording | null>(null);
  const [pieces, setPieces] = useState<Piece[]>([]);
  const [label, setLabel] = useState<Label>("positive");
  const [speaker, setSpeaker] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const player = useRef<HTMLAudioElement>(null);
  const stopAt = useRef<number | null>(null);

  const split = async (file: File) => {
    setBusy("Finding the phrases…");
    setError(null);
    try {
      const proposed = await api.splitLongRecording(datasetId, file);
      setRecording(proposed);
      setPieces(proposed.segments.map((s) => ({ ...s, keep: true })));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };

  const play = (piece: Piece) => {
    const audio = player.current;
    if (!audio) return;
    audio.currentTime = piece.start;
    stopAt.current = piece.end;
    void audio.play();
  };

  const change = (index: number, update: Partial<Piece>) =>
    setPieces((current) => current.map((p, i) => (i === index ? { ...p, ...update } : p)));

  const kept = pieces.filter((p) => p.keep);
  const accept = async () => {
    if (!recording) return;
    setBusy("Adding the clips…");
    setError(null);
    try {
      const metadata = { label, speaker: speaker.trim() || null, source: "upload" as const };
      const added = await api.acceptSegments(recording.id, metadata, kept.map(({ start, end }) => ({ start, end })));
      notify(`Added ${added.length} clips as ${label}`, { kind: "success" });
      setRecording(null);
      setPieces([]);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="card long-recording" data-testid="long-recording">
      <h3>Split a long recording</h3>
      <p className="muted small">
        One recording of someone saying the phrase several times (up to ten minutes): each phrase becomes a clip, after you
        check it.
      </p>
      {!recording && (
        <label className="btn file-button">
          Choose a long recording…
          <input
            type="file"
            accept="audio/*,.wav,.flac,.ogg,.mp3"
            className="visually-hidden"
            data-testid="long-recording-input"
            disabled={busy !== null}
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = "";
              if (file) void split(file);
            }}
          />
        </label>
      )}
      {busy && <p className="muted">{busy}</p>}
      {error && (
        <p className="form-error" role="alert" data-testid="long-recording-error">
          {error}
        </p>
      )}
      {recording && (
        <>
          <p data-testid="long-recording-summary">
            {recording.filename ?? "The recording"}: {recording.duration_seconds.toFixed(1)} s, {pieces.length} phrases
            found.
          </p>
          <audio
            ref={player}
            controls
            preload="auto"
            src={urls.longRecordingAudio(recording.id)}
            aria-label="The long recording"
            onTimeUpdate={(e) => {
              if (stopAt.current !== null && e.currentTarget.currentTime >= stopAt.current) {
                e.currentTarget.pause();
                stopAt.current = null;
              }
            }}
          />
          <table className="segments">
            <thead>
              <tr>
                <th>Keep</th>
                <th>Start (s)</th>
                <th>End (s)</th>
                <th>Length</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {pieces.map((piece, i) => (
                <tr key={i} data-testid="segment" className={piece.keep ? "" : "dropped"}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Keep phrase ${i + 1}`}
                      data-testid="segment-keep"
                      checked={piece.keep}
                      onChange={(e) => change(i, { keep: e.target.checked })}
                    />
                  </td>
                  <td>
                    <SecondsInput label={`Start of phrase ${i + 1}`} testId="segment-start" value={piece.start} onChange={(start) => change(i, { start })} />
                  </td>
                  <td>
                    <SecondsInput label={`End of phrase ${i + 1}`} testId="segment-end" value={piece.end} onChange={(end) => change(i, { end })} />
                  </td>
                  <td className="muted small">{(piece.end - piece.start).toFixed(2)} s</td>
                  <td>
                    <button className="btn small" onClick={() => play(piece)}>
                      Play
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="form-row">
            <label className="field">
              <span>Label</span>
              <LabelSelect testId="long-recording-label" value={label} onChange={setLabel} />
            </label>
            <label className="field">
              <span>Speaker</span>
              <input data-testid="long-recording-speaker" value={speaker} placeholder="optional" onChange={(e) => setSpeaker(e.target.value)} />
            </label>
          </div>
          <div className="record-controls">
            <button
              className="btn primary"
              data-testid="long-recording-accept"
              disabled={busy !== null || kept.length === 0}
              onClick={() => void accept()}
            >
              Add {kept.length} clips
            </button>
            <button
              className="btn ghost"
              disabled={busy !== null}
              onClick={() => {
                setRecording(null);
                setPieces([]);
              }}
            >
              Discard
            </button>
          </div>
        </>
      )}
    </div>
  );
}
