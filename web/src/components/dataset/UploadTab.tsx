import { useCallback, useRef, useState, type DragEvent } from "react";
import { errorMessage, newUploadKey, uploadRecording, type Label } from "../../api";
import { LabelSelect } from "../LabelSelect";
import { LongRecordingSplit } from "./LongRecordingSplit";

const PARALLEL_UPLOADS = 3;

interface UploadItem {
  key: number;
  uploadKey: string; // the Idempotency-Key of every try of this file
  file: File;
  label: Label;
  speaker: string | null;
  phase: "queued" | "uploading" | "stored" | "error";
  progress: number;
  error: string | null;
}

export function UploadTab({ datasetId }: { datasetId: string }) {
  const [label, setLabel] = useState<Label>("positive");
  const [speaker, setSpeaker] = useState("");
  const [items, setItems] = useState<UploadItem[]>([]);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const queue = useRef<UploadItem[]>([]);
  const running = useRef(0);
  const nextKey = useRef(1);

  const patch = useCallback((key: number, change: Partial<UploadItem>) => {
    setItems((current) => current.map((item) => (item.key === key ? { ...item, ...change } : item)));
  }, []);

  const pump = useCallback(() => {
    while (running.current < PARALLEL_UPLOADS && queue.current.length > 0) {
      const item = queue.current.shift() as UploadItem;
      running.current += 1;
      patch(item.key, { phase: "uploading" });
      uploadRecording(
        datasetId,
        item.file,
        item.file.name,
        { label: item.label, speaker: item.speaker, source: "upload" },
        (progress) => patch(item.key, { progress }),
        item.uploadKey,
      )
        .promise.then(() => patch(item.key, { phase: "stored", progress: 1 }))
        .catch((e: unknown) => patch(item.key, { phase: "error", error: errorMessage(e) }))
        .finally(() => {
          running.current -= 1;
          pump();
        });
    }
  }, [datasetId, patch]);

  const add = (files: FileList | File[]) => {
    const added: UploadItem[] = Array.from(files).map((file) => ({
      key: nextKey.current++,
      uploadKey: newUploadKey(),
      file,
      label,
      speaker: speaker.trim() || null,
      phase: "queued",
      progress: 0,
      error: null,
    }));
    if (added.length === 0) return;
    setItems((current) => [...added, ...current]);
    queue.current.push(...added);
    pump();
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    add(event.dataTransfer.files);
  };

  const stored = items.filter((i) => i.phase === "stored").length;
  const failed = items.filter((i) => i.phase === "error").length;
  const pending = items.length - stored - failed;

  return (
    <div className="upload-tab">
      <div className="card">
        <div className="form-row">
          <label className="field">
            <span>Label for this batch</span>
            <LabelSelect testId="upload-label" value={label} onChange={setLabel} />
          </label>
          <label className="field">
            <span>Speaker</span>
            <input data-testid="upload-speaker" value={speaker} placeholder="optional" onChange={(e) => setSpeaker(e.target.value)} />
          </label>
        </div>
        <div
          className={`dropzone ${dragging ? "dragging" : ""}`}
          data-testid="upload-dropzone"
          role="button"
          tabIndex={0}
          onClick={() => input.current?.click()}
          onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
        >
          <strong>Drop audio files here</strong>
          <span className="muted">or click to choose · WAV, FLAC, OGG or MP3 · stored as 16 kHz mono</span>
        </div>
        <input
          ref={input}
          className="visually-hidden"
          data-testid="upload-input"
          aria-label="Audio files to upload"
          tabIndex={-1} // the drop zone above is the one control a keyboard needs
          type="file"
          multiple
          accept="audio/*,.wav,.flac,.ogg,.mp3"
          onChange={(e) => {
            if (e.target.files) add(e.target.files);
            e.target.value = "";
          }}
        />
      </div>

      <LongRecordingSplit datasetId={datasetId} />

      {items.length > 0 && (
        <div className="card upload-list">
          <div className="upload-list-head">
            <span>
              {stored} stored · {failed} failed · {pending} in progress
            </span>
            <button
              className="btn ghost small"
              disabled={pending === items.length}
              onClick={() => setItems((current) => current.filter((i) => i.phase === "queued" || i.phase === "uploading"))}
            >
              Clear finished
            </button>
          </div>
          <ul>
            {items.map((item) => (
              <li
                key={item.key}
                className={`upload-item ${item.phase}`}
                data-testid="upload-item"
                data-filename={item.file.name}
                data-state={item.phase === "queued" ? "uploading" : item.phase}
              >
                <span className="upload-name" title={item.file.name}>
                  {item.file.name}
                </span>
                <span className="muted small">
                  {item.label}
                  {item.speaker && ` · ${item.speaker}`} · {(item.file.size / 1024).toFixed(0)} KB
                </span>
                <div
                  className="progress small-bar"
                  role="progressbar"
                  aria-label={`Upload of ${item.file.name}`}
                  aria-valuemin={0}
                  aria-valuemax={1}
                  aria-valuenow={item.progress}
                >
                  <div className="progress-fill" style={{ width: `${item.progress * 100}%` }} />
                </div>
                <span className="upload-state">
                  {item.phase === "queued" && "waiting…"}
                  {item.phase === "uploading" && (item.progress >= 1 ? "checking…" : `${Math.round(item.progress * 100)} %`)}
                  {item.phase === "stored" && <span className="ok">stored</span>}
                  {item.phase === "error" && (
                    <span className="form-error" data-testid="upload-error">
                      {item.error}
                    </span>
                  )}
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
