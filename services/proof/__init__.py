"""What an auditor or a data-protection officer is shown, and how long it is kept: receipts,
hash-chain and checkpoint verification, history formats, contact-check evidence, retention."""
