import { useCallback, useEffect, useState } from "react";
import {
  api,
  errorMessage,
  NEGATIVE_KINDS,
  type BankImport,
  type NegativeBank,
  type NegativeKind,
} from "../api";
import { formatDateTime, formatHours } from "../format";
import { useNotify } from "../notifications";

// Hours of audio that is never the wake phrase, shared by every dataset's jobs: they train on
// part of it and choose their threshold on the rest.
export function NegativeBankPage() {
  const notify = useNotify();
  const [bank, setBank] = useState<NegativeBank | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(
    () =>
      api
        .negativeBank()
        .then((b) => {
          setBank(b);
          setError(null);
        })
        .catch((e) => setError(errorMessage(e))),
    [],
  );
  const busy = bank?.imports.some((i) => i.state === "queued" || i.state === "running") ?? false;

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (!busy) return undefined;
    const timer = window.setInterval(() => void load(), 1000);
    return () => window.clearInterval(timer);
  }, [busy, load]);

  const remove = async (setId: string) => {
    if (!window.confirm(`Remove ${setId} from the negative bank? Jobs already trained keep their figures.`)) return;
    try {
      const removed = await api.removeNegativeSet(setId);
      notify("Removed from the bank", { kind: "success", body: `${removed.id}: ${formatHours(removed.hours)}` });
    } catch (e) {
      notify("Not removed", { kind: "error", body: errorMessage(e) });
    }
    void load();
  };

  return (
    <div className="negative-bank" data-testid="negative-bank">
      <h1>Negative bank</h1>
      <p className="muted">
        Audio that never holds the wake phrase: television, talk, music, the room the board lives in. Every
        job trains on part of it and chooses its threshold on the rest, so the false accepts per hour it
        reports rest on hours, not minutes. Three hours or more let a job show 1 false accept per hour.
      </p>
      {error && <p className="form-error">{error}</p>}
      {bank && (
        <div className="table-wrap">
          <table className="data-table" data-testid="bank-sets">
            <thead>
              <tr>
                <th>Set</th>
                <th>Kind</th>
                <th className="num">Audio</th>
                <th className="num">Files</th>
                <th>Added</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {bank.sets.map((s) => (
                <tr key={s.id} data-testid="bank-set" data-set-id={s.id}>
                  <td>
                    <code>{s.id}</code>
                  </td>
                  <td>{s.kind}</td>
                  <td className="num">{formatHours(s.hours)}</td>
                  <td className="num">{s.files}</td>
                  <td className="nowrap">{formatDateTime(s.created)}</td>
                  <td className="actions">
                    <button className="btn ghost small" data-testid="bank-remove" onClick={() => void remove(s.id)}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
              {bank.sets.length === 0 && (
                <tr>
                  <td colSpan={6} className="muted">
                    The bank is empty: jobs measure false accepts on their own negative clips only.
                  </td>
                </tr>
              )}
            </tbody>
            <tfoot>
              <tr>
                <td colSpan={2}>Total</td>
                <td className="num" data-testid="bank-hours">
                  {formatHours(bank.hours)}
                </td>
                <td colSpan={3} />
              </tr>
            </tfoot>
          </table>
        </div>
      )}
      {bank && bank.imports.length > 0 && <ImportList imports={bank.imports} />}
      <AddForms onStarted={() => void load()} />
    </div>
  );
}

function ImportList({ imports }: { imports: BankImport[] }) {
  return (
    <ul className="bank-imports" data-testid="bank-imports">
      {imports
        .slice()
        .reverse()
        .map((i) => {
          const fraction = i.total_seconds > 0 ? Math.min(1, i.done_seconds / i.total_seconds) : null;
          return (
            <li key={i.id} data-testid="bank-import" data-state={i.state}>
              <strong>{i.set_id}</strong> {i.state}
              {i.state === "running" && (
                <>
                  {" "}
                  <progress max={1} value={fraction ?? undefined} /> {i.file}
                </>
              )}
              {i.message && <div className={i.state === "failed" ? "form-error" : "muted small"}>{i.message}</div>}
            </li>
          );
        })}
    </ul>
  );
}

function AddForms({ onStarted }: { onStarted: () => void }) {
  const notify = useNotify();
  const [setId, setSetId] = useState("");
  const [kind, setKind] = useState<NegativeKind>("tv");
  const [files, setFiles] = useState<File[]>([]);
  const [path, setPath] = useState("");
  const [error, setError] = useState<string | null>(null);

  const started = (what: string) => {
    notify("Adding to the negative bank", { kind: "success", body: what });
    setError(null);
    onStarted();
  };
  const upload = async () => {
    try {
      await api.uploadNegatives(files, setId.trim(), kind);
      started(`${files.length} files to ${setId}`);
      setFiles([]);
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const importFolder = async () => {
    try {
      const job = await api.importNegatives(path.trim(), setId.trim() || null, kind);
      started(`${path} to ${job.set_id}`);
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  return (
    <section className="bank-add">
      <h2>Add audio</h2>
      <div className="form-row">
        <label className="field">
          <span>Set</span>
          <input
            data-testid="bank-set-id"
            value={setId}
            placeholder="living-room-tv"
            onChange={(e) => setSetId(e.target.value)}
          />
        </label>
        <label className="field">
          <span>Kind</span>
          <select data-testid="bank-kind" value={kind} onChange={(e) => setKind(e.target.value as NegativeKind)}>
            {NEGATIVE_KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
      </div>
      <div className="form-row">
        <label className="field">
          <span>Upload recordings (any length: WAV, FLAC, OGG, MP3)</span>
          <input
            type="file"
            multiple
            accept="audio/*"
            data-testid="bank-files"
            onChange={(e) => setFiles(Array.from(e.target.files ?? []))}
          />
        </label>
        <button
          className="btn primary"
          data-testid="bank-upload"
          disabled={files.length === 0 || !setId.trim()}
          onClick={() => void upload()}
        >
          Upload
        </button>
      </div>
      <div className="form-row">
        <label className="field">
          <span>Or a folder on the server (under WAKETRAIN_NEGATIVES_IMPORT_DIRS)</span>
          <input
            data-testid="bank-path"
            value={path}
            placeholder="/media/usb/recordings"
            onChange={(e) => setPath(e.target.value)}
          />
        </label>
        <button className="btn" data-testid="bank-add-folder" disabled={!path.trim()} onClick={() => void importFolder()}>
          Add folder
        </button>
      </div>
      {error && (
        <p className="form-error" data-testid="bank-error">
          {error}
        </p>
      )}
    </section>
  );
}
