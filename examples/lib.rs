//! Nothing here: the crate exists for its examples (`cargo run --example quickstart`).
