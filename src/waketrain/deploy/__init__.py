"""Ship an export to the board: bundle, SSH transfer, remote apply with rollback."""
