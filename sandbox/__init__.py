"""rlvr.sandbox: run untrusted, model-written programs under hard limits."""
