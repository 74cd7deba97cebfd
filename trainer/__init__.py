"""rlvr.trainer: the policy-gradient family as configuration, and a TRL-based trainer."""
