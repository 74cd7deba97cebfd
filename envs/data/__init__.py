"""Small task sets bundled with rlvr so every built-in environment works with no downloads."""
