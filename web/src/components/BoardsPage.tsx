// The boards "Apply training" ships models to over SSH: add one with a key, test it, trust its
// host key once the operator has compared fingerprints, and pick the default.
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import {
  api,
  BOARD_PROFILES,
  errorMessage,
  type Board,
  type BoardCheck,
  type BoardInput,
  type BoardProfile,
  type ClientKey,
  type HostKey,
} from "../api";
import { boardAddress } from "../format";
import { useNotify } from "../notifications";

type CheckState = { state: "running" } | { state: "done"; check: BoardCheck } | { state: "failed"; message: string };
type FormState = { mode: "add" } | { mode: "edit"; boardId: string } | null;
type KeyChoice = "keep" | "generate" | "paste";

const PROFILE_TEXT: Record<BoardProfile, string> = {
  detector: "detector: this project's detector",
  "tars-compose": "tars-compose: py-tars wake-activation",
};

/** The board's own copy of the host key it offered, for `ssh-keygen -lf` there. */
function hostKeyFile(algorithm: string): string {
  const kind = algorithm.includes("ecdsa") ? "ecdsa" : algorithm.includes("rsa") ? "rsa" : "ed25519";
  return `/etc/ssh/ssh_host_${kind}_key.pub`;
}

export function BoardsPage() {
  const [boards, setBoards] = useState<Board[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [checks, setChecks] = useState<Record<string, CheckState>>({});
  const [form, setForm] = useState<FormState>(null);
  const addButton = useRef<HTMLButtonElement>(null);

  const load = useCallback(
    () =>
      api
        .listBoards()
        .then((b) => {
          setBoards(b);
          setError(null);
        })
        .catch((e) => setError(errorMessage(e))),
    [],
  );
  useEffect(() => {
    void load();
  }, [load]);

  const test = useCallback(async (boardId: string) => {
    setChecks((c) => ({ ...c, [boardId]: { state: "running" } }));
    let result: CheckState;
    try {
      result = { state: "done", check: await api.testBoard(boardId) };
    } catch (e) {
      result = { state: "failed", message: errorMessage(e) };
    }
    setChecks((c) => ({ ...c, [boardId]: result }));
  }, []);

  const closeAdd = () => {
    setForm(null);
    addButton.current?.focus();
  };
  const saved = (board: Board) => {
    if (form?.mode === "add") addButton.current?.focus();
    setForm(null);
    void load();
    // A new board's test shows the host key to trust; an edited board's last result may no longer hold.
    void test(board.id);
  };

  // Blank fields of a new board take the DEPLOY_* settings, which the environment board shows.
  const envBoard = boards?.find((b) => b.source === "environment") ?? null;

  return (
    <div className="boards-page" data-testid="boards-page">
      <div className="page-head">
        <div>
          <h1>Boards</h1>
          <p className="muted">
            A board is the device, an Orange Pi running TARS, that <strong>Apply training</strong> ships models
            to over SSH.
          </p>
        </div>
        <button
          ref={addButton}
          className="btn primary"
          data-testid="board-add"
          aria-expanded={form?.mode === "add"}
          onClick={() => setForm(form?.mode === "add" ? null : { mode: "add" })}
        >
          Add a board
        </button>
      </div>
      {form?.mode === "add" && (
        <section className="card">
          <BoardForm board={null} defaults={envBoard} onSaved={saved} onCancel={closeAdd} />
        </section>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {boards === null && !error && <p className="muted">Loading boards…</p>}
      {boards !== null && boards.length === 0 && (
        <div className="empty-state" data-testid="boards-empty">
          <h2>No board yet</h2>
          <p>
            Add one with <strong>Add a board</strong>: its address, the user to log in as and a key. Test it, trust
            its host key, and <strong>Apply training</strong> can ship models to it.
          </p>
        </div>
      )}
      {boards !== null && boards.length > 0 && (
        <ul className="board-list" aria-label="Boards">
          {boards.map((board) => (
            <li key={board.id}>
              <BoardCard
                board={board}
                check={checks[board.id] ?? null}
                editing={form?.mode === "edit" && form.boardId === board.id}
                defaults={envBoard}
                onTest={() => void test(board.id)}
                onEdit={() => setForm({ mode: "edit", boardId: board.id })}
                onCancelEdit={() => setForm(null)}
                onSaved={saved}
                onChanged={() => void load()}
              />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function BoardCard({
  board,
  check,
  editing,
  defaults,
  onTest,
  onEdit,
  onCancelEdit,
  onSaved,
  onChanged,
}: {
  board: Board;
  check: CheckState | null;
  editing: boolean;
  defaults: Board | null;
  onTest: () => void;
  onEdit: () => void;
  onCancelEdit: () => void;
  onSaved: (board: Board) => void;
  onChanged: () => void;
}) {
  const notify = useNotify();
  const env = board.source === "environment";
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const headingId = useId();
  const editButton = useRef<HTMLButtonElement>(null);
  const removeButton = useRef<HTMLButtonElement>(null);
  const cancelRemove = useRef<HTMLButtonElement>(null);

  // Focus returns to the button that opened a form or a confirmation, not to the top of the page.
  const wasEditing = useRef(editing);
  useEffect(() => {
    if (wasEditing.current && !editing) editButton.current?.focus();
    wasEditing.current = editing;
  }, [editing]);
  const wasConfirming = useRef(confirming);
  useEffect(() => {
    if (confirming) cancelRemove.current?.focus();
    else if (wasConfirming.current) removeButton.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  const act = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setConfirming(false);
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const makeDefault = () =>
    act(async () => {
      await api.makeDefaultBoard(board.id);
      notify(`${board.name} is the default board`, { kind: "success" });
      onChanged();
    });
  const remove = () =>
    act(async () => {
      await api.removeBoard(board.id);
      notify(`Board ${board.name} removed`, { kind: "success" });
      onChanged();
    });
  const trust = (fingerprint: string) =>
    act(async () => {
      await api.trustHostKey(board.id, fingerprint);
      notify(`Host key of ${board.name} trusted`, { kind: "success", body: fingerprint });
      onChanged();
      onTest();
    });

  if (editing) {
    return (
      <article className="card board-card" data-testid="board" data-board-name={board.name}>
        <BoardForm board={board} defaults={defaults} onSaved={onSaved} onCancel={onCancelEdit} />
      </article>
    );
  }

  const running = check?.state === "running";
  return (
    <article className="card board-card" data-testid="board" data-board-name={board.name} aria-labelledby={headingId}>
      <div className="board-head">
        <h2 id={headingId}>{board.name}</h2>
        {board.is_default && (
          <span className="badge accent" data-testid="board-default-badge">
            Default
          </span>
        )}
      </div>
      {env && (
        <p className="muted small" data-testid="board-env-note">
          Read-only here: set by DEPLOY_* on the server.
        </p>
      )}
      <dl className="facts board-facts">
        <dt>Address</dt>
        <dd>
          <code>{boardAddress(board)}</code>
        </dd>
        <dt>Path</dt>
        <dd>
          <code>{board.path}</code>
        </dd>
        <dt>Runs</dt>
        <dd>{PROFILE_TEXT[board.profile] ?? board.profile}</dd>
        {board.post_command && (
          <>
            <dt>After the swap</dt>
            <dd>
              <code>{board.post_command}</code>
            </dd>
          </>
        )}
        {board.health_command && (
          <>
            <dt>Health check</dt>
            <dd>
              <code>{board.health_command}</code>
            </dd>
          </>
        )}
        <dt>Host key</dt>
        <dd data-testid="board-host-key">
          {board.host_key ? (
            <code>{board.host_key.fingerprint}</code>
          ) : (
            <>
              <span className="warning-text">host key not trusted yet</span>
              {env && (
                <span className="small">
                  {" "}
                  (trust it with <code>waketrain pin-host-key</code> on the server)
                </span>
              )}
            </>
          )}
        </dd>
        <dt>Client key</dt>
        <dd data-testid="board-client-key">{board.key ? <code>{board.key.fingerprint}</code> : "none"}</dd>
      </dl>
      {board.key && <PublicKey clientKey={board.key} user={board.user} />}
      <div className="board-actions">
        <button className="btn" data-testid="board-test" disabled={running} onClick={onTest}>
          {running ? "Testing…" : "Test"}
        </button>
        {!env && (
          <>
            <button ref={editButton} className="btn" data-testid="board-edit" disabled={busy} onClick={onEdit}>
              Edit
            </button>
            {!board.is_default && (
              <button className="btn" data-testid="board-default" disabled={busy} onClick={() => void makeDefault()}>
                Make default
              </button>
            )}
            {confirming ? (
              <span
                className="confirm-bar"
                role="group"
                aria-label={`Confirm removing ${board.name}`}
                data-testid="board-remove-confirm-bar"
              >
                Remove {board.name}? Models already on it stay there.
                <button
                  className="btn small danger"
                  data-testid="board-remove-confirm"
                  disabled={busy}
                  onClick={() => void remove()}
                >
                  {busy ? "Removing…" : "Remove"}
                </button>
                <button
                  ref={cancelRemove}
                  className="btn small"
                  data-testid="board-remove-cancel"
                  disabled={busy}
                  onClick={() => setConfirming(false)}
                >
                  Cancel
                </button>
              </span>
            ) : (
              <button
                ref={removeButton}
                className="btn danger"
                data-testid="board-remove"
                disabled={busy}
                onClick={() => setConfirming(true)}
              >
                Remove
              </button>
            )}
          </>
        )}
      </div>
      {error && (
        <p className="form-error" role="alert" data-testid="board-error">
          {error}
        </p>
      )}
      <div aria-live="polite">
        {check?.state === "done" && <CheckResult board={board} check={check.check} busy={busy} onTrust={trust} />}
        {check?.state === "failed" && (
          <div className="board-check bad" data-testid="board-check" data-ok="false">
            <p>The test did not run: {check.message}</p>
          </div>
        )}
      </div>
    </article>
  );
}

function CheckResult({
  board,
  check,
  busy,
  onTrust,
}: {
  board: Board;
  check: BoardCheck;
  busy: boolean;
  onTrust: (fingerprint: string) => Promise<void>;
}) {
  const status = check.host_key_status;
  const tone = check.ok ? "ok" : status === "mismatch" ? "bad" : "warn";
  const offered = status === "unpinned" || status === "mismatch" ? check.host_key : null;
  return (
    <div
      className={`board-check ${tone}`}
      data-testid="board-check"
      data-ok={String(check.ok)}
      data-host-key-status={status ?? ""}
    >
      <p className="board-check-message">{check.message}</p>
      <ul className="board-check-steps">
        <Step value={check.reachable}>{check.reachable ? "reachable" : "not reachable"}</Step>
        {status && (
          <Step value={status === "pinned"}>
            {status === "pinned" ? "host key trusted" : status === "mismatch" ? "host key changed" : "host key not trusted yet"}
          </Step>
        )}
        <Step value={check.login}>
          {check.login === null ? "login not tried" : check.login ? "login works" : "login refused"}
        </Step>
        <Step value={check.path_writable}>
          {check.path_writable === null ? "path not checked" : check.path_writable ? "path writable" : "path not writable"}
        </Step>
      </ul>
      {offered && (
        <HostKeyPrompt board={board} offered={offered} mismatch={status === "mismatch"} busy={busy} onTrust={onTrust} />
      )}
    </div>
  );
}

function Step({ value, children }: { value: boolean | null; children: ReactNode }) {
  const mark = value === null ? "–" : value ? "✓" : "✗";
  return (
    <li>
      <span className="step-mark" aria-hidden="true">
        {mark}
      </span>
      {children}
    </li>
  );
}

function HostKeyPrompt({
  board,
  offered,
  mismatch,
  busy,
  onTrust,
}: {
  board: Board;
  offered: HostKey;
  mismatch: boolean;
  busy: boolean;
  onTrust: (fingerprint: string) => Promise<void>;
}) {
  return (
    <div className={`host-key-prompt${mismatch ? " mismatch" : ""}`}>
      {mismatch ? (
        <p>
          <strong>Warning: the board offers a different host key than the one trusted.</strong> It may be a different
          board at this address, or someone in between. Trust it only if the board was reinstalled.
        </p>
      ) : (
        <p>The board offers this host key ({offered.algorithm}), not trusted yet:</p>
      )}
      <code className="fingerprint" data-testid="board-fingerprint">
        {offered.fingerprint}
      </code>
      <p className="small">
        Compare it with the board's own: run <code>ssh-keygen -lf {hostKeyFile(offered.algorithm)}</code> on the
        board. Trust it only if both match.
      </p>
      {board.source === "environment" ? (
        <p className="small">
          This board is set by DEPLOY_* on the server: trust its key there with <code>waketrain pin-host-key</code>.
        </p>
      ) : (
        <button
          className={`btn ${mismatch ? "danger" : "primary"}`}
          data-testid="board-trust"
          disabled={busy}
          onClick={() => void onTrust(offered.fingerprint)}
        >
          Trust this key
        </button>
      )}
    </div>
  );
}

function PublicKey({ clientKey, user }: { clientKey: ClientKey; user: string }) {
  const line = useRef<HTMLPreElement>(null);
  const [copied, setCopied] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(clientKey.public_key);
      setCopied("Copied.");
    } catch {
      // No clipboard API over plain HTTP: select the line so the operator can copy it.
      if (line.current) window.getSelection()?.selectAllChildren(line.current);
      setCopied("Selected: copy it with Ctrl+C, or Copy on a phone.");
    }
  };
  return (
    <div className="board-key">
      <p className="small">
        The service logs in with its own key: add this line to <code>~/.ssh/authorized_keys</code> of{" "}
        <code>{user}</code> on the board.
      </p>
      <pre ref={line} className="public-key" data-testid="board-public-key">
        {clientKey.public_key}
      </pre>
      <div className="board-key-copy">
        <button className="btn small" data-testid="board-copy-key" onClick={() => void copy()}>
          Copy
        </button>
        <span className="muted small" role="status">
          {copied}
        </span>
      </div>
    </div>
  );
}

function BoardForm({
  board,
  defaults,
  onSaved,
  onCancel,
}: {
  /** null: a new board. */
  board: Board | null;
  defaults: Board | null;
  onSaved: (board: Board) => void;
  onCancel: () => void;
}) {
  const notify = useNotify();
  const [name, setName] = useState(board?.name ?? "");
  const [host, setHost] = useState(board?.host ?? "");
  const [port, setPort] = useState(board ? String(board.port) : "");
  const [user, setUser] = useState(board?.user ?? "");
  const [path, setPath] = useState(board?.path ?? "");
  const [profile, setProfile] = useState<BoardProfile>(board?.profile ?? defaults?.profile ?? "detector");
  const [postCommand, setPostCommand] = useState(board?.post_command ?? "");
  const [healthCommand, setHealthCommand] = useState(board?.health_command ?? "");
  const [keyChoice, setKeyChoice] = useState<KeyChoice>(board ? "keep" : "generate");
  const [privateKey, setPrivateKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const headingId = useId();
  const nameInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    nameInput.current?.focus();
  }, []);

  const keyFields = (): Pick<BoardInput, "generate_key" | "private_key"> => {
    if (keyChoice === "generate") return { generate_key: true };
    // OpenSSH's reader wants the final newline that a paste often loses.
    if (keyChoice === "paste") return { private_key: `${privateKey.trim()}\n` };
    return {};
  };

  const newBoard = (): BoardInput => {
    const input: BoardInput = { name: name.trim(), host: host.trim(), user: user.trim(), profile, ...keyFields() };
    if (port.trim()) input.port = Number(port);
    if (path.trim()) input.path = path.trim();
    if (postCommand.trim()) input.post_command = postCommand.trim();
    if (healthCommand.trim()) input.health_command = healthCommand.trim();
    return input;
  };

  // Only what changed: the server un-pins the host key when the host or port change.
  const changes = (current: Board): Partial<BoardInput> => {
    const changed: Partial<BoardInput> = keyFields();
    const text = { name: name.trim(), host: host.trim(), user: user.trim(), path: path.trim() };
    for (const field of ["name", "host", "user", "path"] as const) {
      if (text[field] !== current[field]) changed[field] = text[field];
    }
    if (Number(port) !== current.port) changed.port = Number(port);
    if (profile !== current.profile) changed.profile = profile;
    const post = postCommand.trim() || null;
    if (post !== current.post_command) changed.post_command = post;
    const health = healthCommand.trim() || null;
    if (health !== current.health_command) changed.health_command = health;
    return changed;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const update = board ? changes(board) : null;
    if (board && update && Object.keys(update).length === 0) {
      onCancel();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const saved = board && update ? await api.updateBoard(board.id, update) : await api.createBoard(newBoard());
      notify(board ? `Board ${saved.name} saved` : `Board ${saved.name} added`, {
        kind: "success",
        body: saved.key && keyChoice === "generate" ? "Add its public key to the board, then trust its host key." : undefined,
      });
      onSaved(saved);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const keyHint: Record<KeyChoice, string> = {
    keep: "The service keeps logging in with the key it has.",
    generate: board
      ? "Replaces the current key: the board then needs the new public key in its authorized_keys."
      : "The server makes an ed25519 key; after saving, add its public key to the board.",
    paste: "OpenSSH or PEM, without a passphrase. It stays on the server and is never shown again.",
  };
  const keyOptions: [KeyChoice, string][] = [
    ["generate", "Generate a new key"],
    ["paste", "Paste a private key"],
  ];
  if (board) keyOptions.unshift(["keep", "Keep the current key"]);
  const text = { spellCheck: false, autoCapitalize: "off", autoCorrect: "off" } as const;

  return (
    <form className="board-form" data-testid="board-form" aria-labelledby={headingId} onSubmit={submit}>
      <h2 id={headingId}>{board ? `Edit ${board.name}` : "Add a board"}</h2>
      {!board && (
        <p className="hint">Port, path and commands left blank take the server's DEPLOY_* settings.</p>
      )}
      <label className="field">
        <span>Name</span>
        <input
          ref={nameInput}
          data-testid="board-name"
          required
          pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,62}"
          value={name}
          placeholder="tars-kitchen"
          {...text}
          onChange={(e) => setName(e.target.value)}
        />
        <small className="muted">Letters, digits, dots, dashes and underscores; no spaces.</small>
      </label>
      <div className="form-row">
        <label className="field board-host-field">
          <span>Host</span>
          <input
            data-testid="board-host"
            required
            value={host}
            placeholder="orangepi.local"
            {...text}
            onChange={(e) => setHost(e.target.value)}
          />
        </label>
        <label className="field board-port-field">
          <span>Port</span>
          <input
            data-testid="board-port"
            type="number"
            inputMode="numeric"
            min={1}
            max={65535}
            required={board !== null}
            value={port}
            placeholder={String(defaults?.port ?? 22)}
            onChange={(e) => setPort(e.target.value)}
          />
        </label>
      </div>
      <label className="field">
        <span>User</span>
        <input
          data-testid="board-user"
          required
          value={user}
          placeholder="orangepi"
          {...text}
          onChange={(e) => setUser(e.target.value)}
        />
      </label>
      <label className="field">
        <span>Path on the board</span>
        <input
          data-testid="board-path"
          required={board !== null}
          value={path}
          placeholder={defaults?.path ?? "/opt/waketrain"}
          {...text}
          onChange={(e) => setPath(e.target.value)}
        />
        <small className="muted">Holds incoming/, releases/ and current; the user must be able to write there.</small>
      </label>
      <label className="field">
        <span>What runs the model</span>
        <select data-testid="board-profile" value={profile} onChange={(e) => setProfile(e.target.value as BoardProfile)}>
          {BOARD_PROFILES.map((p) => (
            <option key={p} value={p}>
              {PROFILE_TEXT[p]}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Command after the swap</span>
        <input
          data-testid="board-post-command"
          value={postCommand}
          placeholder={defaults?.post_command ?? ""}
          {...text}
          onChange={(e) => setPostCommand(e.target.value)}
        />
        <small className="muted">
          Runs on the board once the new model is in place, to restart what uses it. detector needs none: it follows
          current by itself.
        </small>
      </label>
      <label className="field">
        <span>Health check</span>
        <input
          data-testid="board-health-command"
          value={healthCommand}
          placeholder={defaults?.health_command ?? ""}
          {...text}
          onChange={(e) => setHealthCommand(e.target.value)}
        />
        <small className="muted">Runs after that command; if it fails, the board rolls back to the previous model.</small>
      </label>
      <fieldset className="field key-choice">
        <legend>Key the service logs in with</legend>
        <div className="choice-group">
          {keyOptions.map(([value, label]) => (
            <label key={value} className="btn choice" data-testid={`board-key-${value}`}>
              {/* Tab stops at the chosen option and arrows move between them, as in any radio group;
                  the others leave the tab order explicitly so that no control looks unreachable. */}
              <input
                type="radio"
                className="visually-hidden"
                name={`${headingId}-key`}
                value={value}
                checked={keyChoice === value}
                tabIndex={keyChoice === value ? 0 : -1}
                onChange={() => setKeyChoice(value)}
              />
              {label}
            </label>
          ))}
        </div>
        <small className="muted">{keyHint[keyChoice]}</small>
        {keyChoice === "paste" && (
          <label className="field private-key">
            <span>Private key</span>
            <textarea
              data-testid="board-private-key"
              required
              rows={6}
              value={privateKey}
              placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"
              autoComplete="off"
              {...text}
              onChange={(e) => setPrivateKey(e.target.value)}
            />
          </label>
        )}
      </fieldset>
      {error && (
        <p className="form-error" role="alert" data-testid="board-form-error">
          {error}
        </p>
      )}
      <div className="board-form-actions">
        <button className="btn primary" type="submit" data-testid="board-save" disabled={busy}>
          {busy ? "Saving…" : board ? "Save changes" : "Add board"}
        </button>
        <button className="btn" type="button" data-testid="board-cancel" disabled={busy} onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
