import { useRef } from "react";
import { useFocusTrap } from "../../../hooks";

export function Lightbox({ src, alt, onClose }: { src: string; alt: string; onClose: () => void }) {
  const dialog = useRef<HTMLDivElement>(null);
  useFocusTrap(dialog, onClose);
  return (
    <div
      ref={dialog}
      tabIndex={-1}
      className="modal-backdrop lightbox"
      role="dialog"
      aria-modal="true"
      aria-label={alt}
      onClick={onClose}
    >
      <img src={src} alt={alt} />
    </div>
  );
}
