//! Leaf pieces that several stages share: config helpers (durations as strings, the
//! error of a config file), digests, JSON conversions, the [`principal`] a request acts
//! for, CORS settings and PEM reading. Nothing here imports anything else of the
//! gateway, so every stage may import it without an arrow running back up.

pub mod config;
pub mod cors;
pub mod digest;
pub mod json;
pub mod pem;
pub mod principal;
