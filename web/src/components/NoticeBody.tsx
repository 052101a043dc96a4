import type { Notice } from "../notifications";

export function NoticeBody({ notice }: { notice: Notice }) {
  return (
    <div className="notice-body">
      <strong>{notice.title}</strong>
      {notice.body && <div className="notice-text">{notice.body}</div>}
      {notice.links && notice.links.length > 0 && (
        <div className="notice-links">
          {notice.links.map((link) => (
            <a key={link.href} href={link.href} download={link.download ? "" : undefined}>
              {link.label}
            </a>
          ))}
        </div>
      )}
    </div>
  );
}
