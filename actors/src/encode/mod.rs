//! Encoding: FFmpeg-library encoders that make broadcast TS items.
pub mod testcard;
