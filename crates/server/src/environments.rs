//! The sandbox environments an interview's runs can use. Today there is one, `python` (the
//! image `sandbox/build-image.sh` builds).

use duet_protocol::DEFAULT_ENVIRONMENT;

/// Whether `name` is an environment this server can run.
pub fn is_known(name: &str) -> bool {
    name == DEFAULT_ENVIRONMENT
}
