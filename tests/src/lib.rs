//! End-to-end scenarios against a real Duet server; see tests/tests/.
