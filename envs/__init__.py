"""rlvr.envs: Gymnasium-style text environments that turn verifiers into reward sources."""
