import { useNotifications } from "../notifications";
import { NoticeBody } from "./NoticeBody";

export function Toasts() {
  const { toasts, dismiss } = useNotifications();
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((toast) => (
        <div key={toast.id} className={`toast ${toast.kind}`} data-testid="toast" role="status">
          <NoticeBody notice={toast} />
          <button className="toast-close" aria-label="Dismiss" data-testid="toast-close" onClick={() => dismiss(toast.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
