//! Models: one file a model, each a serde `Config` and layers with `load` and `forward`.

pub mod bert;
pub mod efficientnet;
pub mod embedder;
pub mod generate;
pub mod llama;
pub mod rdn;
pub mod text;
