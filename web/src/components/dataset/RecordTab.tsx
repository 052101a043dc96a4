import { useEffect, useMemo, useState } from "react";
import { errorMessage, newUploadKey, uploadRecording, type Label } from "../../api";
import type { Recording } from "../../audio/recorder";
import { useRecorder } from "../../audio/useRecorder";
import { useNotify } from "../../notifications";
import { LABEL_HINTS, LabelSelect } from "../LabelSelect";
import { LevelMeter } from "../LevelMeter";
import { WaveformPlayer } from "../WaveformPlayer";

const MAX_SECONDS = 25; // the server refuses clips over 30 s

export function RecordTab({ datasetId }: { datasetId: string }) {
  const notify = useNotify();
  const [label, setLabel] = useState<Label>("positive");
  const [speaker, setSpeaker] = useState("");
  const [recording, setRecording] = useState<Recording | null>(null);
  const [previewUrl, setPreviewUrl] = useState<string | null>(null);
  const [saving, setSaving] = useState<number | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [kept, setKept] = useState(0);
  const recorder = useRecorder(MAX_SECONDS, (r) => setRecording(r));
  // One key per take: pressing Keep again after a lost answer cannot store it twice.
  const uploadKey = useMemo(() => newUploadKey(), [recording]);

  useEffect(() => {
    if (!recording) {
      setPreviewUrl(null);
      return undefined;
    }
    const url = URL.createObjectURL(recording.wav);
    setPreviewUrl(url);
    return () => URL.revokeObjectURL(url);
  }, [recording]);

  const start = async () => {
    setRecording(null);
    setSaveError(null);
    await recorder.start();
  };

  const stop = async () => {
    const result = await recorder.stop();
    if (result) setRecording(result);
  };

  const keep = async () => {
    if (!recording) return;
    setSaving(0);
    setSaveError(null);
    try {
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      await uploadRecording(
        datasetId,
        recording.wav,
        `record-${label}-${stamp}.wav`,
        { label, speaker: speaker.trim() || null, source: "record" },
        setSaving,
        uploadKey,
      ).promise;
      setKept((n) => n + 1);
      setRecording(null);
      notify(`Kept a ${label} recording`, { kind: "success" });
    } catch (e) {
      setSaveError(errorMessage(e));
    } finally {
      setSaving(null);
    }
  };

  const busy = recorder.state !== "idle";
  const duration = recorder.state === "recording" ? recorder.elapsedSeconds : (recording?.durationSeconds ?? 0);

  return (
    <div className="record-tab two-col">
      <div className="card">
        <h2>Record</h2>
        <div className="form-row">
          <label className="field">
            <span>Label</span>
            <LabelSelect testId="record-label" value={label} onChange={setLabel} disabled={busy} />
          </label>
          <label className="field">
            <span>Speaker</span>
            <input
              data-testid="record-speaker"
              value={speaker}
              placeholder="e.g. anna"
              disabled={busy}
              onChange={(e) => setSpeaker(e.target.value)}
            />
          </label>
        </div>
        <p className="hint">{LABEL_HINTS[label]}</p>

        <div className="record-controls">
          <button
            className="btn record"
            data-testid="record-start"
            disabled={busy || saving !== null}
            onClick={() => void start()}
          >
            <span className="rec-dot" /> {recording ? "Record again" : "Record"}
          </button>
          <button className="btn" data-testid="record-stop" disabled={recorder.state !== "recording"} onClick={() => void stop()}>
            Stop
          </button>
          <LevelMeter level={recorder.level} testId="record-level" active={recorder.state === "recording"} />
          <span className="duration">
            <span data-testid="record-duration">{duration.toFixed(1)}</span> s
          </span>
        </div>
        {recorder.state === "starting" && <p className="muted small">Opening the microphone…</p>}
        {recorder.state === "processing" && <p className="muted small">Converting to 16 kHz…</p>}
        {recorder.state === "recording" && (
          <p className="muted small">Recording… stops by itself after {MAX_SECONDS} s.</p>
        )}
        {recorder.error && (
          <p className="form-error" role="alert" data-testid="record-error">
            {recorder.error}
          </p>
        )}

        {recording && (
          <div className="record-preview" data-testid="record-preview">
            <WaveformPlayer
              url={previewUrl}
              waveformTestId="record-waveform"
              toggleTestId="record-play"
              height={72}
              caption={`${recording.durationSeconds.toFixed(1)} s at 16 kHz (captured at ${recording.captureRateHz / 1000} kHz)`}
            />
            <div className="preview-actions">
              <button className="btn primary" data-testid="record-keep" disabled={saving !== null} onClick={() => void keep()}>
                {saving !== null ? `Saving… ${Math.round(saving * 100)} %` : `Keep as ${label}`}
              </button>
              <button
                className="btn"
                data-testid="record-retake"
                disabled={saving !== null}
                onClick={() => {
                  setRecording(null);
                  setSaveError(null);
                }}
              >
                Retake
              </button>
            </div>
            {saveError && (
              <p className="form-error" role="alert" data-testid="record-save-error">
                {saveError}
              </p>
            )}
          </div>
        )}
      </div>
      <aside className="card side-notes">
        <h3>Tips</h3>
        <ul>
          <li>Record where the device will listen, at the distance people will speak from.</li>
          <li>Several speakers, speeds and moods beat many takes by one person.</li>
          <li>Aim for at least 50 positive and 50 negative or noise clips before training.</li>
        </ul>
        {kept > 0 && <p className="muted">Kept this session: {kept}</p>}
      </aside>
    </div>
  );
}
