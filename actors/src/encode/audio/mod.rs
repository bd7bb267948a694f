//! The item's sound: decoding (`source.rs`), the loudness measurement pass
//! (`measure.rs`) and the normalising encode pass (`normalise.rs`).

pub(crate) mod measure;
pub(crate) mod normalise;
pub(crate) mod source;
