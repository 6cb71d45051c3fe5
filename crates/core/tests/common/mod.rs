//! What the core's scenario tests share.
pub mod scene;
