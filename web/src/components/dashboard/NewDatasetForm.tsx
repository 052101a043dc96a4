import { useState, type FormEvent } from "react";
import { api, errorMessage } from "../../api";
import { useNotify } from "../../notifications";
import { datasetHref } from "../../router";

function slugOf(phrase: string): string {
  return phrase
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48);
}

export function NewDatasetForm({ onCreated }: { onCreated: () => void }) {
  const notify = useNotify();
  const [id, setId] = useState("");
  const [idEdited, setIdEdited] = useState(false);
  const [phrase, setPhrase] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api.createDataset({
        id: id.trim(),
        phrase: phrase.trim(),
        description: description.trim() || null,
      });
      notify(`Dataset ${created.id} created`, {
        kind: "success",
        links: [{ href: datasetHref(created.id), label: "Open" }],
      });
      setId("");
      setIdEdited(false);
      setPhrase("");
      setDescription("");
      onCreated();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card form-card" onSubmit={submit}>
      <h2>New dataset</h2>
      <label className="field">
        <span>Wake phrase</span>
        <input
          data-testid="new-dataset-phrase"
          value={phrase}
          placeholder="hey tars"
          onChange={(e) => {
            setPhrase(e.target.value);
            if (!idEdited) setId(slugOf(e.target.value));
          }}
        />
      </label>
      <label className="field">
        <span>Id</span>
        <input
          data-testid="new-dataset-id"
          value={id}
          placeholder="hey-tars"
          spellCheck={false}
          onChange={(e) => {
            setId(e.target.value);
            setIdEdited(true);
          }}
        />
        <small className="muted">Lowercase letters, digits and dashes; used in paths and URLs.</small>
      </label>
      <label className="field">
        <span>
          Description <span className="muted">(optional)</span>
        </span>
        <textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      {error && (
        <p className="form-error" role="alert" data-testid="new-dataset-error">
          {error}
        </p>
      )}
      <button className="btn primary" type="submit" data-testid="new-dataset-submit" disabled={busy}>
        {busy ? "Creating…" : "Create dataset"}
      </button>
    </form>
  );
}
